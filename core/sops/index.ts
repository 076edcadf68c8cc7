// The SOPS module's public surface: read (parse, decrypt, verify the MAC), write a Secret, write it again
// only when it changed. Everything else in this folder is an implementation detail of these.
export { decryptSops, decryptWithKey, parseSops, plainDocument, type DecryptedComment, type DecryptedSops, type SopsEnvelope, type SopsFormat } from './decrypt.js';
export { encryptSecret, secretDocument, type EncryptSecretOptions } from './encrypt-secret.js';
export { resealSecret, type ResealOptions, type ResealReason, type ResealResult } from './reseal.js';
export { openDataKey, parseAgeIdentities, recipientOf, sealDataKey } from './age-keys.js';
export { SOPS_FORMAT_VERSION, type AgeEntry, type SopsMetadata } from './metadata.js';
export { SECRET_RULE, type CryptRule } from './rules.js';
export { toPlain, fromPlain, type SopsMap, type SopsValue } from './tree.js';
export * from './errors.js';
export { ageRecipientProblem, recipientOfIdentity, singleIdentity } from './age-key-text.js';
