// Every way reading or writing a SOPS file can fail, as typed errors: callers decide by class (a file
// that cannot be opened with our key is not the same event as one whose values were changed by hand),
// and the message names what failed — a value's path, the MAC, the key entry — never a plaintext.

/** Base of every SOPS error; `code` is stable for logs and metrics. */
export abstract class SopsError extends Error {
  abstract readonly code: string;
}

/** The text is not a SOPS file this reader understands: bad YAML/JSON, no `sops` block, a malformed field. */
export class SopsFormatError extends SopsError {
  override name = 'SopsFormatError';
  readonly code = 'sops_format';
}

/** A SOPS feature this module deliberately does not implement (key groups, comment rules, INI …). */
export class SopsUnsupportedError extends SopsError {
  override name = 'SopsUnsupportedError';
  readonly code = 'sops_unsupported';
}

/** No age identity opened the data key, or a recipient/identity string is not a usable age key. */
export class SopsKeyError extends SopsError {
  override name = 'SopsKeyError';
  readonly code = 'sops_key';
}

/** One value did not decrypt (wrong AAD, changed ciphertext, tag or IV) or its plaintext has the wrong type. */
export class SopsValueError extends SopsError {
  override name = 'SopsValueError';
  readonly code = 'sops_value';
  constructor(
    /** The value's AAD, the path keys joined with ':' plus a trailing ':' (`stringData:password:`). */
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

/** The file's MAC could not be decrypted (changed MAC or `lastmodified`) or does not match the values. */
export class SopsMacError extends SopsError {
  override name = 'SopsMacError';
  readonly code = 'sops_mac';
}

/** The object given to the writer cannot be written as a SOPS file (a `sops` key, a non-JSON value …). */
export class SopsInputError extends SopsError {
  override name = 'SopsInputError';
  readonly code = 'sops_input';
}
