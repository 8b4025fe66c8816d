/**
 * TLS 1.3 suites in muxtun's order of preference. AES-128-GCM first: with
 * AES-NI it is the cheapest per byte, and a tunnel's CPU per byte is its
 * bulk speed; 256-bit AES and ChaCha20 stay available for peers that prefer them.
 */
export const TLS13_CIPHER_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';
