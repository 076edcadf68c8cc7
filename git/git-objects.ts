// Git object ids computed in-process. The writer decides "unchanged object, no commit" by
// comparing the blob id of the new content with the id already in the tree; computing it here costs
// microseconds, where `git hash-object` would cost a process (~9 ms) per event.
import { createHash } from 'node:crypto';

/**
 * The id git gives a file with this content: sha1 of `blob <byte length>\0<bytes>`, the content encoded
 * as UTF-8 (as the writer stores it). Equal to `git hash-object` of the same file in a sha1 repository.
 */
export function blobSha(content: string): string {
  const body = Buffer.from(content, 'utf8');
  return createHash('sha1')
    .update(`blob ${body.length}\0`, 'utf8')
    .update(body)
    .digest('hex');
}
