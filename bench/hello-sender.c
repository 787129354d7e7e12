/*
 * A lean hello sender for bench/hello.ts and bench/hello-flood.ts (issue 7 item 4, issue 8
 * "floods"): Node client sockets cost about as much CPU as the server's, so a Node load
 * generator on the same two cores measures itself. This is one single-threaded epoll loop.
 *
 * Each connection is what a device does (protocol.md §1): bind a source address (many
 * 127.x.y.z, so per-address limits apply as on a LAN), connect, write one 32-byte version 2
 * hello, half-close, and wait for the server to close. A connection counts as "completed" when
 * the server's FIN arrives after the whole hello was written; anything else is an error, by
 * errno name.
 *
 * Two modes:
 *   closed loop: --total T --concurrency C      C connections at a time until T completed
 *   open loop:   --rate R --seconds S [--concurrency C]
 *                R new connections per second for S seconds; when C are already open, the
 *                connection due is skipped and counted (the offered rate is what was started)
 *
 * Hellos: a valid random UUID and a random valid PID (protocol.md §2 check character) each, or
 * --pool N distinct ones reused round robin; --pid XXXXXXXX sends that PID in every hello.
 *
 * Prints one JSON object on stdout. Compiled by the bench scripts (cc -O2); not part of the
 * server. Build by hand: cc -O2 -o hello-sender bench/hello-sender.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define HELLO_LEN 32
#define MAX_ERR 16
#define LAT_BUCKETS 4096 /* milliseconds, the last one collects everything slower */

static const char ALPHABET[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

struct conn {
  int fd;
  uint8_t written; /* bytes of the hello written */
  uint8_t connected;
  double started;
  uint8_t msg[HELLO_LEN]; /* this connection's hello */
};

static struct {
  const char *host;
  int port;
  long total;
  double rate;
  double seconds;
  int concurrency;
  int prefix_a, prefix_b;
  int addresses;
  int pool;
  const char *pid;
  double timeout_ms;
  uint64_t seed;
} opt = {"127.0.0.1", 0, 0, 0, 0, 1000, 127, 20, 1000, 0, NULL, 10000, 0};

static uint64_t rng_state;
static uint64_t rnd(void) {
  /* xorshift64*: a load generator's randomness, not security's. */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

static void make_hello(uint8_t *b) {
  memset(b, 0, HELLO_LEN);
  b[0] = 0; /* AdminCredentialsSet */
  b[2] = 2; /* InterfaceVersion 2, little-endian */
  for (int i = 8; i < 24; i++) b[i] = (uint8_t)rnd();
  if (opt.pid != NULL) {
    memcpy(b + 24, opt.pid, 8);
    return;
  }
  int sum = 0;
  for (int i = 0; i < 7; i++) {
    char c = ALPHABET[rnd() % 36];
    b[24 + i] = (uint8_t)c;
    sum += c;
  }
  b[31] = (uint8_t)ALPHABET[sum % 36];
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static struct { int code; long count; } errs[MAX_ERR];
static void count_error(int code) {
  for (int i = 0; i < MAX_ERR; i++) {
    if (errs[i].count == 0) errs[i].code = code;
    if (errs[i].code == code) {
      errs[i].count++;
      return;
    }
  }
}

static const char *errname(int code) {
  if (code == -1) return "TIMEOUT";
  if (code == -2) return "DATA_FROM_SERVER";
  const char *name = strerrorname_np(code);
  return name != NULL ? name : "EUNKNOWN";
}

static long lat[LAT_BUCKETS];
static uint8_t *hellos;
static struct conn *conns; /* slot per fd */
static int maxfd;
static int ep;
static long started_n, completed_n, failed_n, skipped_n, next_hello;
static int open_n;
static struct sockaddr_in dst;

static void finish(struct conn *c, int error) {
  if (error == 0) {
    completed_n++;
    double ms = now_ms() - c->started;
    long bucket = ms < 0 ? 0 : (long)ms;
    lat[bucket < LAT_BUCKETS ? bucket : LAT_BUCKETS - 1]++;
  } else {
    failed_n++;
    count_error(error);
  }
  close(c->fd); /* also removes it from the epoll set */
  c->fd = -1;
  open_n--;
}

static void start_one(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    failed_n++;
    count_error(errno);
    return;
  }
  if (fd >= maxfd) {
    close(fd);
    failed_n++;
    count_error(EMFILE);
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  /* The port is picked at connect time from the whole 4-tuple: many sources, no port shortage. */
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  long k = started_n % opt.addresses;
  struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = 0};
  src.sin_addr.s_addr =
      htonl(((uint32_t)opt.prefix_a << 24) | ((uint32_t)opt.prefix_b << 16) | ((uint32_t)(k / 250) << 8) | (uint32_t)(k % 250 + 1));
  started_n++;
  open_n++;
  struct conn *c = &conns[fd];
  c->fd = fd;
  c->written = 0;
  c->connected = 0;
  c->started = now_ms();
  if (opt.pool > 0) memcpy(c->msg, hellos + (size_t)(next_hello++ % opt.pool) * HELLO_LEN, HELLO_LEN);
  else make_hello(c->msg);
  if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) return finish(c, errno);
  if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) return finish(c, errno);
  struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.fd = fd};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) return finish(c, errno);
}

static void on_event(int fd, uint32_t events) {
  struct conn *c = &conns[fd];
  if (c->fd != fd) return;
  if (!c->connected && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return finish(c, err);
    c->connected = 1;
  }
  if (c->connected && c->written < HELLO_LEN) {
    ssize_t n = send(fd, c->msg + c->written, HELLO_LEN - c->written, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno != EAGAIN) return finish(c, errno);
    } else {
      c->written += (uint8_t)n;
    }
    if (c->written == HELLO_LEN) {
      shutdown(fd, SHUT_WR);
      struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
      epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    }
    return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) return finish(c, c->written == HELLO_LEN ? 0 : EPIPE);
    if (n > 0) return finish(c, -2); /* the hello port never answers */
    if (errno != EAGAIN) return finish(c, errno);
  }
}

static double percentile(long n, double p) {
  if (n == 0) return 0;
  long want = (long)(p * (double)(n - 1)) + 1, seen = 0;
  for (int i = 0; i < LAT_BUCKETS; i++) {
    seen += lat[i];
    if (seen >= want) return i;
  }
  return LAT_BUCKETS - 1;
}

static void usage(void) {
  fprintf(stderr,
          "usage: hello-sender --port P [--host 127.0.0.1] (--total T | --rate R --seconds S) [--concurrency C]\n"
          "                    [--prefix A.B] [--addresses K] [--pool N] [--pid XXXXXXXX] [--timeout-ms MS] [--seed S]\n");
  exit(2);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL) usage();
    i++;
    if (!strcmp(a, "--port")) opt.port = atoi(v);
    else if (!strcmp(a, "--host")) opt.host = v;
    else if (!strcmp(a, "--total")) opt.total = atol(v);
    else if (!strcmp(a, "--rate")) opt.rate = atof(v);
    else if (!strcmp(a, "--seconds")) opt.seconds = atof(v);
    else if (!strcmp(a, "--concurrency")) opt.concurrency = atoi(v);
    else if (!strcmp(a, "--prefix")) {
      if (sscanf(v, "%d.%d", &opt.prefix_a, &opt.prefix_b) != 2) usage();
    } else if (!strcmp(a, "--addresses")) opt.addresses = atoi(v);
    else if (!strcmp(a, "--pool")) opt.pool = atoi(v);
    else if (!strcmp(a, "--pid")) opt.pid = v;
    else if (!strcmp(a, "--timeout-ms")) opt.timeout_ms = atof(v);
    else if (!strcmp(a, "--seed")) opt.seed = strtoull(v, NULL, 10);
    else usage();
  }
  if (opt.port <= 0 || opt.concurrency <= 0 || opt.addresses <= 0 || opt.addresses > 250 * 256) usage();
  if (opt.pid != NULL && strlen(opt.pid) != 8) usage();
  if ((opt.total > 0) == (opt.rate > 0)) usage();
  if (opt.rate > 0 && opt.seconds <= 0) usage();
  signal(SIGPIPE, SIG_IGN);
  rng_state = opt.seed != 0 ? opt.seed : ((uint64_t)getpid() << 32) ^ (uint64_t)now_ms() ^ 0x9E3779B97F4A7C15ULL;

  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  maxfd = (int)(rl.rlim_cur > 1u << 20 ? 1u << 20 : rl.rlim_cur);
  if (opt.concurrency > maxfd - 16) opt.concurrency = maxfd - 16;
  conns = calloc((size_t)maxfd, sizeof *conns);
  for (int i = 0; i < maxfd; i++) conns[i].fd = -1;
  hellos = malloc((size_t)(opt.pool > 0 ? opt.pool : 1) * HELLO_LEN);
  for (int i = 0; i < opt.pool; i++) make_hello(hellos + (size_t)i * HELLO_LEN);

  dst.sin_family = AF_INET;
  dst.sin_port = htons((uint16_t)opt.port);
  if (inet_pton(AF_INET, opt.host, &dst.sin_addr) != 1) usage();
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event events[1024];

  double t0 = now_ms();
  double end = opt.rate > 0 ? t0 + opt.seconds * 1e3 : 0;
  double last_sweep = t0;
  for (;;) {
    double t = now_ms();
    if (opt.rate > 0) {
      if (t < end) {
        long due = (long)((t - t0) / 1e3 * opt.rate);
        while (started_n + skipped_n < due) {
          if (open_n >= opt.concurrency) skipped_n++;
          else start_one();
        }
      } else if (open_n == 0) {
        break;
      }
    } else {
      while (open_n < opt.concurrency && started_n < opt.total) start_one();
      if (open_n == 0 && started_n >= opt.total) break;
    }
    /* Connections older than the timeout are given up (SYNs dropped by a full backlog retry at 1, 3, 7 s). */
    if (t - last_sweep > 100) {
      last_sweep = t;
      for (int fd = 0; fd < maxfd; fd++)
        if (conns[fd].fd == fd && t - conns[fd].started > opt.timeout_ms) finish(&conns[fd], -1);
    }
    int n = epoll_wait(ep, events, 1024, 1);
    for (int i = 0; i < n; i++) on_event(events[i].data.fd, events[i].events);
  }
  double ms = now_ms() - t0;

  printf("{\"started\":%ld,\"completed\":%ld,\"failed\":%ld,\"skipped\":%ld,\"ms\":%.1f,", started_n, completed_n,
         failed_n, skipped_n, ms);
  printf("\"latencyMs\":{\"p50\":%.0f,\"p99\":%.0f,\"max\":%.0f},\"errors\":{", percentile(completed_n, 0.5),
         percentile(completed_n, 0.99), percentile(completed_n, 1.0));
  for (int i = 0, first = 1; i < MAX_ERR && errs[i].count > 0; i++, first = 0)
    printf("%s\"%s\":%ld", first ? "" : ",", errname(errs[i].code), errs[i].count);
  printf("}}\n");
  return 0;
}
