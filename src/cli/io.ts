/** What a command may do to the outside world; tests pass their own to capture output. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  setExitCode(code: number): void;
  readonly isTty: boolean;
}

export const processIo: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  setExitCode: (code) => {
    process.exitCode = code;
  },
  isTty: Boolean(process.stderr.isTTY),
};
