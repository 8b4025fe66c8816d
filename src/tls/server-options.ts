import type { TlsOptions } from 'node:tls';
import { TLS13_CIPHER_SUITES } from './cipher-suites.js';

/**
 * node:tls server options for a certificate and key (for example from
 * {@link loadOrCreateServerCertificate} or {@link loadCertificateFiles}).
 * TLS 1.3 only: muxtun has no old clients to support, and 1.3 leaves no
 * weak cipher suites or renegotiation to configure.
 */
export function serverTlsOptions(material: { cert: string; key: string }): TlsOptions {
  return { cert: material.cert, key: material.key, minVersion: 'TLSv1.3', ciphers: TLS13_CIPHER_SUITES, honorCipherOrder: true };
}
