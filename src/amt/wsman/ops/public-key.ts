import { resourceUri, type EndpointReference } from '../envelope.ts';
import {
  getCall,
  methodCall,
  methodOutput,
  readInstance,
  single,
  stringProperty,
  type SingleOperation,
} from '../operation.ts';
import { malformedReply, parseEpr, requireChild, requireText, selectorValue, type XmlValue } from '../parse.ts';

/** AMT_PublicKeyManagementService and the instances it creates (protocol.md §6 step 6). */
export const PUBLIC_KEY_MANAGEMENT_SERVICE = 'AMT_PublicKeyManagementService';
export const PUBLIC_PRIVATE_KEY_PAIR = 'AMT_PublicPrivateKeyPair';
export const PUBLIC_KEY_CERTIFICATE = 'AMT_PublicKeyCertificate';

/** A reference to an instance this service created, and its InstanceID handle. */
export interface CreatedReference {
  readonly reference: EndpointReference;
  readonly instanceId: string;
}

function created(output: XmlValue, element: string, where: string): CreatedReference {
  const reference = parseEpr(requireChild(output, element, where), `${where}.${element}`);
  const instanceId = selectorValue(reference, 'InstanceID');
  if (instanceId === undefined) throw malformedReply(`${where}.${element} has no InstanceID selector`);
  return { reference, instanceId };
}

/** An EPR to an instance by InstanceID, as Intel's own stack addresses key pairs and certificates. */
export function instanceReference(className: string, instanceId: string): EndpointReference {
  return {
    address: '/wsman',
    resourceUri: resourceUri(className),
    selectors: [{ name: 'InstanceID', value: instanceId }],
  };
}

/** GenerateKeyPair(KeyAlgorithm=0 RSA, KeyLength=2048): the key never leaves the device. */
export function generateKeyPair(keyAlgorithm = 0, keyLength = 2048): SingleOperation<CreatedReference> {
  const request = methodCall(PUBLIC_KEY_MANAGEMENT_SERVICE, 'GenerateKeyPair', [
    ['KeyAlgorithm', keyAlgorithm],
    ['KeyLength', keyLength],
  ]);
  return single(`${PUBLIC_KEY_MANAGEMENT_SERVICE}.GenerateKeyPair`, request, (reply) =>
    created(methodOutput(reply, request, 'GenerateKeyPair'), 'KeyPair', 'GenerateKeyPair_OUTPUT'),
  );
}

export interface KeyPair {
  readonly instanceId: string;
  /** base64 DER of the device public key as the device gives it (AMT: a PKCS#1 RSAPublicKey), for the null-signed PKCS#10. */
  readonly derKey: string;
}

/** Get AMT_PublicPrivateKeyPair by InstanceID: the public half of a generated key. */
export function getPublicPrivateKeyPair(instanceId: string): SingleOperation<KeyPair> {
  return single(
    `${PUBLIC_PRIVATE_KEY_PAIR}.Get`,
    getCall(PUBLIC_PRIVATE_KEY_PAIR, [{ name: 'InstanceID', value: instanceId }]),
    (reply) => {
      const instance = readInstance(reply.body, PUBLIC_PRIVATE_KEY_PAIR);
      const derKey = stringProperty(instance, 'DERKey');
      if (derKey === undefined) throw malformedReply(`${PUBLIC_PRIVATE_KEY_PAIR} has no DERKey`);
      return { instanceId: stringProperty(instance, 'InstanceID') ?? instanceId, derKey };
    },
  );
}

export interface Pkcs10Request {
  /** InstanceID of the AMT_PublicPrivateKeyPair (from GenerateKeyPair). */
  readonly keyPairInstanceId: string;
  /** base64 DER of a PKCS#10 request carrying the device public key and a null signature. */
  readonly nullSignedCertificateRequest: string;
  /** 0 SHA1-RSA, 1 SHA256-RSA. */
  readonly signingAlgorithm?: number;
}

/** GeneratePKCS10RequestEx(KeyPair EPR, SigningAlgorithm, NullSignedCertificateRequest) -> the device-signed request. */
export function generatePkcs10RequestEx(
  input: Pkcs10Request,
): SingleOperation<{ readonly signedCertificateRequest: string }> {
  const request = methodCall(PUBLIC_KEY_MANAGEMENT_SERVICE, 'GeneratePKCS10RequestEx', [
    ['KeyPair', instanceReference(PUBLIC_PRIVATE_KEY_PAIR, input.keyPairInstanceId)],
    ['SigningAlgorithm', input.signingAlgorithm ?? 1],
    ['NullSignedCertificateRequest', input.nullSignedCertificateRequest],
  ]);
  return single(`${PUBLIC_KEY_MANAGEMENT_SERVICE}.GeneratePKCS10RequestEx`, request, (reply) => {
    const output = methodOutput(reply, request, 'GeneratePKCS10RequestEx');
    return {
      signedCertificateRequest: requireText(output, 'SignedCertificateRequest', 'GeneratePKCS10RequestEx_OUTPUT'),
    };
  });
}

/** AddCertificate(CertificateBlob = base64 DER) -> the AMT_PublicKeyCertificate it created. */
export function addCertificate(certificateBlob: string): SingleOperation<CreatedReference> {
  const request = methodCall(PUBLIC_KEY_MANAGEMENT_SERVICE, 'AddCertificate', [['CertificateBlob', certificateBlob]]);
  return single(`${PUBLIC_KEY_MANAGEMENT_SERVICE}.AddCertificate`, request, (reply) =>
    created(methodOutput(reply, request, 'AddCertificate'), 'CreatedCertificate', 'AddCertificate_OUTPUT'),
  );
}
