// @peculiar/x509's typings name the DOM's WebCrypto globals; Node provides the same objects
// under node:crypto's `webcrypto`. Declaring the names here avoids pulling the whole DOM lib.
type CryptoKey = import('node:crypto').webcrypto.CryptoKey;
type Crypto = import('node:crypto').webcrypto.Crypto;
type CryptoKeyPair = import('node:crypto').webcrypto.CryptoKeyPair;
type Algorithm = import('node:crypto').webcrypto.Algorithm;
type AlgorithmIdentifier = import('node:crypto').webcrypto.AlgorithmIdentifier;
type HashAlgorithmIdentifier = import('node:crypto').webcrypto.HashAlgorithmIdentifier;
type RsaHashedKeyGenParams = import('node:crypto').webcrypto.RsaHashedKeyGenParams;
type RsaHashedImportParams = import('node:crypto').webcrypto.RsaHashedImportParams;
type EcKeyGenParams = import('node:crypto').webcrypto.EcKeyGenParams;
type EcKeyImportParams = import('node:crypto').webcrypto.EcKeyImportParams;
type KeyUsage = import('node:crypto').webcrypto.KeyUsage;
type BufferSource = import('node:crypto').webcrypto.BufferSource;
type JsonWebKey = import('node:crypto').webcrypto.JsonWebKey;
