import {
  addCertificate,
  generateKeyPair,
  generatePkcs10RequestEx,
  getPublicPrivateKeyPair,
} from '../../amt/wsman/ops/public-key.ts';
import { createTlsCredentialContext, getTlsSettingData, putTlsSettingData } from '../../amt/wsman/ops/tls.ts';
import { isScsError, ScsError } from '../../errors.ts';
import { fqdn } from '../context.ts';
import { nullSignedCertificateRequest } from '../csr.ts';
import type { Step } from './step.ts';

/**
 * §6 step 6: the device makes a key pair (GenerateKeyPair, RSA 2048), signs a request for it
 * (GeneratePKCS10RequestEx on our null-signed PKCS#10), the SCS CA issues a certificate for the
 * device's FQDN, AddCertificate installs it, Create AMT_TLSCredentialContext binds it to the
 * TLS endpoint and Put AMT_TLSSettingData turns TLS on; all of it takes effect at commit. A
 * retry starts from a new key pair, so a certificate is never added twice.
 */
export const tlsStep: Step = {
  name: 'tls',
  async run(ctx) {
    const hostName = ctx.data.hostName;
    if (hostName === undefined) throw new ScsError('SCS_JOB_FAILED', 'TLS before host/domain: no host name');
    const name = fqdn(hostName, ctx.data.domainName ?? '');
    const key = await ctx.call(generateKeyPair(0, 2048));
    const { derKey } = await ctx.call(getPublicPrivateKeyPair(key.instanceId));
    const { signedCertificateRequest } = await ctx.call(
      generatePkcs10RequestEx({
        keyPairInstanceId: key.instanceId,
        nullSignedCertificateRequest: nullSignedCertificateRequest(derKey, name),
        signingAlgorithm: 1,
      }),
    );
    const issued = await ctx.issuer.issueDeviceCertificate(Buffer.from(signedCertificateRequest, 'base64'), {
      dnsName: name,
      uuid: ctx.uuid,
      validityDays: ctx.profile.certificateValidityDays,
    });
    const cert = await ctx.call(addCertificate(issued.der.toString('base64')));
    try {
      await ctx.call(createTlsCredentialContext(cert.instanceId));
    } catch (error) {
      // A context from an earlier attempt of this job (its reply was lost): AMT keeps one; the
      // certificate in it was issued by the same CA for the same name, so verification holds.
      if (!(isScsError(error, 'SCS_WSMAN_FAULT') && /AlreadyExists/.test(String(error.details.subcode)))) throw error;
      ctx.log.warn('a TLS credential context exists already; keeping it');
      ctx.note({ tlsContextReused: true });
    }
    const settings = await ctx.call(getTlsSettingData());
    await ctx.call(putTlsSettingData(settings.instance, { enabled: true }));
    ctx.note({
      tls: true,
      certPem: issued.pem,
      certFingerprint: issued.sha256Fingerprint,
      certNotAfter: issued.notAfter.toISOString(),
    });
  },
};
