import { digestHa1 } from '../amt/http/digest.ts';
import {
  getCall,
  readInstance,
  single,
  stringProperty,
  voidMethod,
  type SingleOperation,
} from '../amt/wsman/operation.ts';
import { malformedReply, toInt } from '../amt/wsman/parse.ts';
import type { Secret } from '../secret.ts';

/**
 * IPS_HostBasedSetupService (protocol.md §6 "Related"; AMT SDK): the certificate-based setup
 * calls. Built on the same operation helpers as src/amt/wsman/ops, kept here with the PKI path.
 */
export const HOST_BASED_SETUP_SERVICE = 'IPS_HostBasedSetupService';

/** NetAdminPassEncryptionType 2: NetworkAdminPassword is the hex MD5 of admin:realm:password (HTTP Digest A1). */
export const NET_ADMIN_PASS_HTTP_DIGEST_MD5_A1 = 2;
/** SigningAlgorithm 2: RSA with SHA-256 (1 is SHA-1). */
export const SIGNING_ALGORITHM_RSA_SHA256 = 2;

export interface HostBasedSetup {
  /** 20 bytes the AdminSetup signature must cover (first, then our McNonce). */
  readonly configurationNonce: Buffer;
  /** 0 not provisioned, 1 client control, 2 admin control. */
  readonly currentControlMode: number;
}

export function getHostBasedSetupService(): SingleOperation<HostBasedSetup> {
  return single(`${HOST_BASED_SETUP_SERVICE}.Get`, getCall(HOST_BASED_SETUP_SERVICE), (reply) => {
    const instance = readInstance(reply.body, HOST_BASED_SETUP_SERVICE);
    const nonce = stringProperty(instance, 'ConfigurationNonce');
    const mode = stringProperty(instance, 'CurrentControlMode');
    if (nonce === undefined || mode === undefined) {
      throw malformedReply(`${HOST_BASED_SETUP_SERVICE} has no ConfigurationNonce or CurrentControlMode`);
    }
    return {
      configurationNonce: Buffer.from(nonce, 'base64'),
      currentControlMode: toInt(mode, `${HOST_BASED_SETUP_SERVICE}.CurrentControlMode`),
    };
  });
}

/** AddNextCertInChain(NextCertificate, IsLeafCertificate, IsRootCertificate): leaf first, root last. */
export function addNextCertInChain(der: Buffer, isLeaf: boolean, isRoot: boolean): SingleOperation<number> {
  return voidMethod(HOST_BASED_SETUP_SERVICE, 'AddNextCertInChain', [
    ['NextCertificate', der.toString('base64')],
    ['IsLeafCertificate', isLeaf],
    ['IsRootCertificate', isRoot],
  ]);
}

export interface AdminSetupInput {
  readonly realm: string;
  /** The new password of the built-in `admin`; only its Digest A1 hash is sent. */
  readonly password: Secret<string>;
  readonly mcNonce: Buffer;
  readonly signature: Buffer;
}

/** AdminSetup: admin control mode, with the signature over ConfigurationNonce || McNonce. */
export function adminSetup(input: AdminSetupInput): SingleOperation<number> {
  return voidMethod(HOST_BASED_SETUP_SERVICE, 'AdminSetup', [
    ['NetAdminPassEncryptionType', NET_ADMIN_PASS_HTTP_DIGEST_MD5_A1],
    ['NetworkAdminPassword', digestHa1('admin', input.realm, input.password).toString('hex')],
    ['McNonce', input.mcNonce.toString('base64')],
    ['SigningAlgorithm', SIGNING_ALGORITHM_RSA_SHA256],
    ['DigitalSignature', input.signature.toString('base64')],
  ]);
}
