import { createHash, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { isValidPid, type Pid } from '../../src/psk/pid.ts';
import { isValidPps, type Pps } from '../../src/psk/pps.ts';
import { Secret } from '../../src/secret.ts';
import { KeyStore, type KeyPairProvider, type StoredCert, type StoredKey } from './keystore.ts';
import {
  checkProvisioningChain,
  newConfigurationNonce,
  verifyAdminSetupSignature,
  type ChainVerdict,
  type TrustedHash,
} from './pki.ts';
import { PtStatus } from './pt-status.ts';
import {
  isValidUsername,
  stateName,
  type DeviceSetup,
  type ProvisioningStateValue,
  type Psk,
  type ResolvedSetup,
} from './setup.ts';

/**
 * The AMT firmware state of one device, without sockets: what is committed (what the device
 * runs with, survives a reboot) and the working copy that WS-Management writes go to until
 * CommitChanges (protocol.md §7: "Settings written before CommitChanges are pending").
 */
export type TlsInstance = '802.3' | 'LMS';

export const TLS_INSTANCE_IDS: Readonly<Record<TlsInstance, string>> = {
  '802.3': 'Intel(r) AMT 802.3 TLS Settings',
  LMS: 'Intel(r) AMT LMS TLS Settings',
};

export interface TlsSetting {
  enabled: boolean;
  acceptNonSecureConnections: boolean;
  mutualAuthentication: boolean;
  trustedCn: string[];
}

export interface AdminAcl {
  username: string;
  /** MD5(username:realm:password), 16 raw bytes. */
  ha1: Buffer;
}

export interface AmtConfig {
  /** The PID/PPS the device holds now: the one it hellos with (In), the one SetTLSPSK left (Post). */
  psk: Psk | undefined;
  /** Set by SetTLSPSK; becomes `psk` at CommitChanges. Only ever in the working copy. */
  newPsk: Psk | undefined;
  mebxPassword: Secret<string>;
  /** Undefined: the built-in `admin` user with the MEBx password. */
  admin: AdminAcl | undefined;
  hostName: string;
  domainName: string;
  /** Certificate handle of the one AMT_TLSCredentialContext, if created. */
  tlsContextCert: number | undefined;
  tls: Record<TlsInstance, TlsSetting>;
}

function defaultTls(): Record<TlsInstance, TlsSetting> {
  return {
    '802.3': { enabled: false, acceptNonSecureConnections: false, mutualAuthentication: false, trustedCn: [] },
    LMS: { enabled: false, acceptNonSecureConnections: true, mutualAuthentication: false, trustedCn: [] },
  };
}

function copyConfig(c: AmtConfig): AmtConfig {
  return {
    ...c,
    tls: {
      '802.3': { ...c.tls['802.3'], trustedCn: [...c.tls['802.3'].trustedCn] },
      LMS: { ...c.tls.LMS, trustedCn: [...c.tls.LMS.trustedCn] },
    },
  };
}

export function md5(text: string): Buffer {
  return createHash('md5').update(text, 'utf8').digest();
}

export type ModelEvent =
  | { type: 'provisioned'; tls: boolean }
  | { type: 'unprovisioned'; partial: boolean }
  | { type: 'stateChanged'; from: ProvisioningStateValue; to: ProvisioningStateValue }
  | { type: 'periodExtended'; hours: number; endsAt: number };

export interface ModelDeps {
  keyPairProvider: KeyPairProvider;
  /** Milliseconds since the epoch. */
  clock: () => number;
  /** Length of a setup window (protocol.md §1d: 6 hours for PSK). */
  provisioningWindowMs: number;
  onEvent: (event: ModelEvent) => void;
}

/** What 16993 serves: TLS-PSK with the PID/PPS held (none: every identity is unknown), or TLS with a certificate. */
export type TlsMode =
  | { kind: 'psk'; psk: Psk | undefined }
  | { kind: 'cert'; key: StoredKey; cert: StoredCert }
  /**
   * PKI setup mode (AMT 7+ remote configuration): the device's self-signed certificate; with
   * `mutual`, a client certificate chain is required and checked after the handshake.
   */
  | { kind: 'pki'; identity: SetupIdentity | undefined; mutual: boolean };

export interface SetupIdentity {
  keyPem: string;
  certPem: string;
}

/** CurrentControlMode of IPS_HostBasedSetupService: 0 not provisioned, 1 client control, 2 admin control. */
export type ControlMode = 0 | 1 | 2;

/** AMT strong password rule (protocol.md §6 step 3), as MEBx enforces it. */
export function isStrongPassword(pw: string): boolean {
  if (pw.length < 8 || pw.length > 32) return false;
  if (!/^[\x20-\x7e]+$/.test(pw) || /[:,"]/.test(pw)) return false;
  // Underscore and space are allowed but do not count as the special character.
  return /[A-Z]/.test(pw) && /[a-z]/.test(pw) && /[0-9]/.test(pw) && /[^A-Za-z0-9_ ]/.test(pw);
}

/** SetAdminAclEntryEx DigestPassword: base64 of the 16 MD5 bytes, or (one stack's habit) 32 hex digits. */
export function decodeDigestPassword(value: string): Buffer | undefined {
  const v = value.trim();
  if (/^[0-9a-fA-F]{32}$/.test(v)) return Buffer.from(v, 'hex');
  if (/^[A-Za-z0-9+/]{22}==$/.test(v)) return Buffer.from(v, 'base64');
  return undefined;
}

/** SetTLSPSK takes PID/PPS as text (protocol.md §6 step 7) or as base64 of their ASCII bytes. */
function decodePskText(value: string, textLength: number): string {
  const v = value.trim();
  const b64Length = Math.ceil(textLength / 3) * 4;
  if (v.length === b64Length && /^[A-Za-z0-9+/]+=*$/.test(v)) {
    const bytes = Buffer.from(v, 'base64');
    if (bytes.length === textLength) return bytes.toString('latin1');
  }
  return v;
}

export class AmtModel {
  state: ProvisioningStateValue;
  mode: number;
  committed: AmtConfig;
  working: AmtConfig;
  readonly keystore: KeyStore;
  readonly uuid: string;
  readonly digestRealm: string;
  readonly amtVersion: string;
  readonly buildNumber: string;
  readonly sku: string;
  /** Device clock = host clock + this (SetHighAccuracyTimeSynch moves it). */
  timeOffsetMs = 0;
  #lastTa0: number | undefined;
  /** When the current setup window closes (In only), epoch ms. */
  windowEndsAt: number | undefined;
  /** The domain DHCP option 15 gives the device: the setup's domainName (a full unprovision does not change the network). */
  readonly dhcpDomain: string;
  /** Certificate-based setup settings (trusted root hashes, PKI DNS suffix), if the device has them. */
  readonly pki: { dnsSuffix: string | undefined; hashes: TrustedHash[] } | undefined;
  /** IPS_HostBasedSetupService.ConfigurationNonce: fresh after every AdminSetup attempt. */
  configurationNonce: Buffer = newConfigurationNonce();
  /** Certificates AddNextCertInChain took so far (leaf first), and the checked leaf once the root came. */
  pkiChain: Buffer[] = [];
  pkiChainLeaf: ChainVerdict | undefined;
  controlMode: ControlMode = 0;
  /** The self-signed certificate of PKI setup mode (made on first use by the device). */
  setupIdentity: SetupIdentity | undefined;
  /** Why the last provisioning certificate was refused (TLS or AddNextCertInChain). */
  lastPkiRefusal: string | undefined;

  constructor(
    setup: ResolvedSetup,
    private readonly deps: ModelDeps,
  ) {
    this.uuid = setup.uuid;
    this.digestRealm = setup.digestRealm ?? `Digest:${randomBytes(16).toString('hex').toUpperCase()}`;
    this.amtVersion = setup.amtVersion;
    this.buildNumber = setup.buildNumber;
    this.sku = setup.sku;
    this.state = setup.provisioningState;
    this.mode = setup.provisioningMode;
    this.pki = setup.pki;
    this.dhcpDomain = setup.domainName;
    if (this.state === 2 && this.pki !== undefined && setup.psk === undefined) this.controlMode = 2;
    this.keystore = new KeyStore(deps.keyPairProvider);
    this.committed = {
      psk: setup.psk,
      newPsk: undefined,
      mebxPassword: setup.mebxPassword,
      admin: setup.admin,
      hostName: setup.hostName,
      domainName: setup.domainName,
      tlsContextCert: undefined,
      tls: defaultTls(),
    };
    if (setup.tlsIdentity !== undefined) {
      const privateKey = createPrivateKey(setup.tlsIdentity.keyPem.reveal());
      const key = this.keystore.addKey({ privateKey, publicKey: createPublicKey(privateKey) });
      const added = this.keystore.addCertificate(
        Buffer.from(setup.tlsIdentity.certPem.replace(/-----[^-]+-----|\s/g, ''), 'base64'),
        false,
      );
      if (!added.ok || added.value.keyHandle !== key.handle) {
        throw new Error('tlsIdentity: the certificate does not certify the key');
      }
      this.committed.tlsContextCert = added.value.handle;
      this.committed.tls['802.3'].enabled = true;
    }
    this.working = copyConfig(this.committed);
    if (this.state === 1) this.windowEndsAt = deps.clock() + deps.provisioningWindowMs;
  }

  get stateName(): 'Pre' | 'In' | 'Post' {
    return stateName(this.state);
  }

  now(): number {
    return this.deps.clock() + this.timeOffsetMs;
  }

  // ---- authentication and transport, from the committed state -------------------------------

  /** HA1 for a Digest user name, or undefined when no such user. */
  ha1For(username: string): Buffer | undefined {
    const admin = this.committed.admin;
    if (admin !== undefined) return username === admin.username ? admin.ha1 : undefined;
    if (username !== 'admin') return undefined;
    return md5(`admin:${this.digestRealm}:${this.committed.mebxPassword.reveal()}`);
  }

  get adminUsername(): string {
    return this.committed.admin?.username ?? 'admin';
  }

  /** 1 in the hello once the MEBx password is no longer the factory `admin` (protocol.md §1a). */
  get adminCredentialsSet(): boolean {
    return this.committed.mebxPassword.reveal() !== 'admin';
  }

  tlsMode(): TlsMode {
    const c = this.committed;
    if (this.state === 2 && c.tlsContextCert !== undefined && c.tls['802.3'].enabled) {
      const cert = this.keystore.certs.get(c.tlsContextCert);
      const key = cert?.keyHandle === undefined ? undefined : this.keystore.keys.get(cert.keyHandle);
      if (cert !== undefined && key !== undefined) return { kind: 'cert', key, cert };
    }
    if (this.inPkiSetup()) return { kind: 'pki', identity: this.setupIdentity, mutual: true };
    // Provisioned by certificate and without a TLS certificate of its own yet: the setup
    // certificate still serves 16993, without asking for a client certificate.
    if (this.state === 2 && this.controlMode === 2 && c.psk === undefined)
      return { kind: 'pki', identity: this.setupIdentity, mutual: false };
    return { kind: 'psk', psk: c.psk };
  }

  /** In without a PSK but with PKI settings: certificate-based setup (version 3 hellos). */
  inPkiSetup(): boolean {
    return this.state === 1 && this.committed.psk === undefined && this.pki !== undefined;
  }

  /** The DNS suffix a provisioning certificate's CN must fall in: MEBx's, else DHCP option 15's. */
  get pkiDnsSuffix(): string {
    return this.pki?.dnsSuffix ?? this.dhcpDomain;
  }

  /** The mutual-TLS check of a client chain (leaf first); records why it was refused. */
  checkClientChain(ders: readonly Buffer[]): ChainVerdict {
    const v = checkProvisioningChain(ders, this.pki?.hashes ?? [], this.pkiDnsSuffix, this.now());
    this.lastPkiRefusal = v.ok ? undefined : v.reason;
    return v;
  }

  /**
   * AddNextCertInChain(NextCertificate, IsLeafCertificate, IsRootCertificate): leaf first, root
   * last; at the root the whole chain is checked (trusted root hash, provisioning EKU/OU, CN in
   * the PKI DNS suffix, validity). A refused chain: INVALID_CERT, and the chain starts over.
   */
  addNextCertInChain(der: Buffer, isLeaf: boolean, isRoot: boolean): number {
    if (!this.inPkiSetup()) return PtStatus.INVALID_PROVISIONING_STATE;
    if (isLeaf) {
      this.pkiChain = [der];
      this.pkiChainLeaf = undefined;
    } else {
      if (this.pkiChain.length === 0) return PtStatus.INVALID_PARAMETER;
      this.pkiChain.push(der);
    }
    if (this.pkiChain.length > 8) return PtStatus.INVALID_PARAMETER;
    if (!isRoot) return PtStatus.SUCCESS;
    const verdict = this.checkClientChain(this.pkiChain);
    if (!verdict.ok) {
      this.pkiChain = [];
      this.pkiChainLeaf = undefined;
      return PtStatus.INVALID_CERT;
    }
    this.pkiChainLeaf = verdict;
    return PtStatus.SUCCESS;
  }

  /**
   * AdminSetup: NetAdminPassEncryptionType 2 (NetworkAdminPassword = hex MD5(admin:realm:password)),
   * McNonce (20 bytes, base64), SigningAlgorithm (2 SHA-256, 1 SHA-1), DigitalSignature over
   * ConfigurationNonce || McNonce with the key of the chain's leaf. Success: admin control mode,
   * Post; pending settings are committed with it. Every attempt uses up the ConfigurationNonce.
   */
  adminSetup(
    encryptionType: number,
    networkAdminPassword: string,
    mcNonce: Buffer,
    signingAlgorithm: number,
    signature: Buffer,
  ): number {
    if (!this.inPkiSetup()) return PtStatus.INVALID_PROVISIONING_STATE;
    const nonce = this.configurationNonce;
    this.configurationNonce = newConfigurationNonce();
    const leaf = this.pkiChainLeaf;
    if (leaf === undefined || !leaf.ok) return PtStatus.DATA_MISSING;
    const ha1 = /^[0-9a-fA-F]{32}$/.test(networkAdminPassword) ? Buffer.from(networkAdminPassword, 'hex') : undefined;
    if (encryptionType !== 2 || ha1 === undefined || mcNonce.length !== 20) return PtStatus.INVALID_PARAMETER;
    if (!verifyAdminSetupSignature(leaf.leaf, nonce, mcNonce, signingAlgorithm, signature)) {
      this.lastPkiRefusal = 'signature';
      return PtStatus.AUTHENTICATION_FAILED;
    }
    this.committed = copyConfig({ ...this.working, admin: { username: 'admin', ha1 }, newPsk: undefined });
    this.working = copyConfig(this.committed);
    this.pkiChain = [];
    this.pkiChainLeaf = undefined;
    this.mode = 1;
    this.controlMode = 2;
    this.windowEndsAt = undefined;
    this.#setState(2);
    this.deps.onEvent({ type: 'provisioned', tls: this.tlsMode().kind === 'cert' });
    return PtStatus.SUCCESS;
  }

  /** Plain HTTP (16992) is closed once TLS is on and AcceptNonSecureConnections is false. */
  nonSecureAllowed(): boolean {
    return this.tlsMode().kind !== 'cert' || this.committed.tls['802.3'].acceptNonSecureConnections;
  }

  // ---- state changes ----------------------------------------------------------------------

  #setState(to: ProvisioningStateValue): void {
    const from = this.state;
    this.state = to;
    if (from !== to) this.deps.onEvent({ type: 'stateChanged', from, to });
  }

  /** A technician types PID/PPS into MEBx (or a USB key is read): Pre -> In. */
  loadPsk(pid: Pid, pps: Pps, mebxPassword?: string): void {
    this.committed.psk = { pid, pps: new Secret(pps) };
    if (mebxPassword !== undefined) this.committed.mebxPassword = new Secret(mebxPassword);
    this.mode = 1;
    this.working = copyConfig(this.committed);
    this.windowEndsAt = this.deps.clock() + this.deps.provisioningWindowMs;
    this.#setState(1);
  }

  /** A reboot loses every pending change (protocol.md §7). */
  discardPending(): void {
    this.working = copyConfig(this.committed);
    this.#lastTa0 = undefined;
  }

  commitChanges(): number {
    if (this.state === 0) return PtStatus.INVALID_PROVISIONING_STATE;
    const w = this.working;
    const wasIn = this.state === 1;
    // In -> Post: the PID/PPS the device was set up with is deleted; only SetTLSPSK's survives.
    const psk = wasIn ? w.newPsk : (w.newPsk ?? w.psk);
    this.committed = copyConfig({ ...w, psk, newPsk: undefined });
    this.working = copyConfig(this.committed);
    if (wasIn) {
      this.mode = 1;
      this.windowEndsAt = undefined;
      this.#setState(2);
      this.deps.onEvent({ type: 'provisioned', tls: this.tlsMode().kind === 'cert' });
    }
    return PtStatus.SUCCESS;
  }

  /** Full unprovision: back to factory (Pre). The MEBx password is kept, as MEBx keeps it. */
  unprovision(provisioningMode: number): number {
    // From AMT 6.0 the only effective modes are 0 (current) and 1 (Enterprise).
    if (provisioningMode !== 0 && provisioningMode !== 1) return PtStatus.INVALID_PARAMETER;
    if (this.state === 0) return PtStatus.INVALID_PROVISIONING_STATE;
    this.committed = {
      psk: undefined,
      newPsk: undefined,
      mebxPassword: this.committed.mebxPassword,
      admin: undefined,
      hostName: '',
      domainName: '',
      tlsContextCert: undefined,
      tls: defaultTls(),
    };
    this.working = copyConfig(this.committed);
    this.keystore.clear();
    this.mode = 0;
    this.controlMode = 0;
    this.pkiChain = [];
    this.pkiChainLeaf = undefined;
    // A device with remote configuration enabled goes back to setup mode (AMT 7+ firmware starts
    // its PKI hellos again); a PSK-only device to the factory state.
    const backToSetup = this.pki !== undefined;
    this.windowEndsAt = backToSetup ? this.deps.clock() + this.deps.provisioningWindowMs : undefined;
    this.#setState(backToSetup ? 1 : 0);
    this.deps.onEvent({ type: 'unprovisioned', partial: false });
    return PtStatus.SUCCESS;
  }

  /**
   * Partial unprovision (protocol.md §6): Post -> In, keeping the admin ACL, host/domain name
   * and the PSK from SetTLSPSK, which becomes the PID/PPS the device hellos with. TLS is turned
   * off so the next setup can reach the device over TLS-PSK. Without a PSK: DATA_MISSING.
   */
  partialUnprovision(): number {
    if (this.state !== 2) return PtStatus.INVALID_PROVISIONING_STATE;
    if (this.committed.psk === undefined) return PtStatus.DATA_MISSING;
    this.committed.tlsContextCert = undefined;
    this.committed.tls = defaultTls();
    this.working = copyConfig(this.committed);
    this.windowEndsAt = this.deps.clock() + this.deps.provisioningWindowMs;
    this.#setState(1);
    this.deps.onEvent({ type: 'unprovisioned', partial: true });
    return PtStatus.SUCCESS;
  }

  /** ExtendProvisioningPeriod(Duration hours, 1..24): the setup window now ends Duration hours from now. */
  extendProvisioningPeriod(hours: number): number {
    if (this.state !== 1) return PtStatus.INVALID_PROVISIONING_STATE;
    if (!Number.isInteger(hours) || hours < 1 || hours > 24) return PtStatus.INVALID_PARAMETER;
    const endsAt = this.deps.clock() + hours * 3_600_000;
    this.windowEndsAt = endsAt;
    this.deps.onEvent({ type: 'periodExtended', hours, endsAt });
    return PtStatus.SUCCESS;
  }

  // ---- settings -----------------------------------------------------------------------------

  /** In setup mode the new admin takes effect at CommitChanges; once Post, at once. */
  setAdminAclEntryEx(username: string, digestPassword: string): number {
    if (this.state === 0) return PtStatus.INVALID_PROVISIONING_STATE;
    const ha1 = decodeDigestPassword(digestPassword);
    if (!isValidUsername(username) || ha1 === undefined || ha1.length !== 16) return PtStatus.INVALID_PARAMETER;
    const acl = { username, ha1 };
    this.working.admin = acl;
    if (this.state === 2) this.committed.admin = acl;
    return PtStatus.SUCCESS;
  }

  /** Policy "during setup and configuration": In only; Post is NOT_PERMITTED. */
  setMebxPassword(password: string): number {
    if (this.state === 0) return PtStatus.INVALID_PROVISIONING_STATE;
    if (this.state === 2) return PtStatus.NOT_PERMITTED;
    if (!isStrongPassword(password)) return PtStatus.INVALID_PASSWORD;
    this.working.mebxPassword = new Secret(password);
    return PtStatus.SUCCESS;
  }

  setTlsPsk(pidValue: string, ppsValue: string): number {
    if (this.state === 0) return PtStatus.INVALID_PROVISIONING_STATE;
    const pid = decodePskText(pidValue, 8);
    const pps = decodePskText(ppsValue, 32);
    // Canonical form only (8 / 32 uppercase symbols, no dashes), with valid check characters.
    if (!/^[0-9A-Z]{8}$/.test(pid) || !isValidPid(pid)) return PtStatus.INVALID_PID_FORMAT;
    if (!/^[0-9A-Z]{32}$/.test(pps) || !isValidPps(pps)) return PtStatus.INVALID_PPS_FORMAT;
    this.working.newPsk = { pid: pid as Pid, pps: new Secret(pps as Pps) };
    return PtStatus.SUCCESS;
  }

  getLowAccuracyTimeSynch(): number {
    const ta0 = Math.floor(this.now() / 1000);
    this.#lastTa0 = ta0;
    return ta0;
  }

  /** Ta0 must be the value the last GetLowAccuracyTimeSynch gave and Tm1 <= Tm2, else INVALID_TIME. */
  setHighAccuracyTimeSynch(ta0: number, tm1: number, tm2: number): number {
    if ([ta0, tm1, tm2].some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
      return PtStatus.INVALID_PARAMETER;
    }
    if (this.#lastTa0 === undefined || ta0 !== this.#lastTa0 || tm2 < tm1) return PtStatus.INVALID_TIME;
    this.#lastTa0 = undefined;
    this.timeOffsetMs = tm2 * 1000 - this.deps.clock();
    return PtStatus.SUCCESS;
  }

  // ---- persistence --------------------------------------------------------------------------

  /** The committed state as a DeviceSetup, secrets included (for a fleet state the operator protects). */
  exportSetup(): DeviceSetup {
    const c = this.committed;
    const out: DeviceSetup = {
      uuid: this.uuid,
      mebxPassword: c.mebxPassword.reveal(),
      amtVersion: this.amtVersion,
      hostName: c.hostName,
      domainName: c.domainName,
      digestRealm: this.digestRealm,
      provisioningState: this.stateName,
      provisioningMode: this.mode,
      buildNumber: this.buildNumber,
      sku: this.sku,
    };
    if (c.psk !== undefined) {
      out.pid = c.psk.pid;
      out.pps = c.psk.pps.reveal();
    }
    if (c.admin !== undefined) out.admin = { username: c.admin.username, digestHa1: c.admin.ha1.toString('hex') };
    if (this.pki !== undefined) {
      const users = this.pki.hashes.filter((h) => !h.isDefault).map((h) => h.hash.toString('hex'));
      out.pki = {
        ...(this.pki.dnsSuffix === undefined ? {} : { dnsSuffix: this.pki.dnsSuffix }),
        userHashes: users,
        defaultHashes: this.pki.hashes.some((h) => h.isDefault),
      };
    }
    const tls = this.tlsMode();
    if (tls.kind === 'cert') {
      out.tlsIdentity = {
        keyPem: tls.key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        certPem: tls.cert.x509.toString(),
      };
    }
    return out;
  }
}
