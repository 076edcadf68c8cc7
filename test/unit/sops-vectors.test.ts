// Files written by the real sops binary (test/fixtures/sops-vectors, a copy of the shared vectors: sops's own age examples, 3.7.1, and Flux's
// kustomize-controller test data, 3.9.0 to 3.12.1) must open with this reader to the plaintext their
// notes give, with the MAC sops stored reproduced: the format is checked against sops's output, not
// against a reading of its code.
import { readFileSync } from 'node:fs';
import { Decrypter, armor } from 'age-encryption';
import { describe, expect, it } from 'vitest';
import { openDataKey, parseAgeIdentities } from '../../core/sops/age-keys.js';
import { decryptSops, parseSops, plainDocument, type SopsFormat } from '../../core/sops/decrypt.js';
import { SopsKeyError } from '../../core/sops/errors.js';

const VECTORS = new URL('../fixtures/sops-vectors/', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, VECTORS), 'utf8');

interface Vector {
  file: string;
  keys: string;
  format: SopsFormat;
  dataKey: string;
  mac: string;
  plain: Record<string, unknown>;
}

const RSA_KEY_START = '-----BEGIN RSA PRIVATE KEY-----\nMIIBPAIBAAJBAPTMNIyHuZtpLYc7VsHQtwOkWYobkUblmHWRmbXzlAX6K8tMf3Wf\n';
const RSA_KEY_END = 'bKGPkMM4w5blyE1tqGN0T7sJwEx+EUOgacRNqM2ljVA=\n-----END RSA PRIVATE KEY-----\n';

const VECTORS_TABLE: Vector[] = [
  {
    file: 'sops-pr1031/example.json',
    keys: 'sops-pr1031/keys.txt',
    format: 'json',
    dataKey: '82ee047aa51fbcf65882bdeb1996b6d729d457364a9eba6b41766cc742415fdb',
    mac: 'BC8999F51CABC9A4FF2FED2333DCFC551E5329986DF594FC200E7000306EB725162F1891DBEBC090F16965008445AFF4071DC19B9FB4B965D024EBEF4804E1AA',
    plain: {
      firstName: 'John',
      lastName: 'Smith',
      age: 25.4,
      address: { city: 'New York', postalCode: '10021-3100', state: 'NY', streetAddress: '21 2nd Street' },
      phoneNumbers: [
        { number: '212 555-1234', type: 'home' },
        { number: '646 555-4567', type: 'office' },
      ],
      anEmptyValue: '',
    },
  },
  {
    file: 'sops-pr1031/example.txt',
    keys: 'sops-pr1031/keys.txt',
    format: 'binary',
    dataKey: '34fabb4b000ca1928576c3b632904de7033bc24734eaa1f0d9ee8d32fdfecc6a',
    mac: '96AA3BAA074FA5CDB7DC9AAF12A73973FB7A682093400B4C5DAC41A88C784B102487DA16658189B269DDC94D0315AF1EDEE0CB603379A36C4B5CFA30113D90CA',
    plain: {
      data:
        'Welcome to SOPS!\n\nSOPS is a manager of encrypted files designed to help distribute secrets.\n' +
        "Check it out, it's on github: https://github.com/mozilla/sops\n\n",
    },
  },
  {
    file: 'flux-kustomize-controller/algorithms-age.yaml',
    keys: 'flux-kustomize-controller/keys/age.txt',
    format: 'yaml',
    dataKey: '558e95c88337865c839703a4e892c03eed324ae6bbcb65c2989558e1a55825bb',
    mac: '5E6C78D06EF2D302C2DBC6DE95E8050A5DC5D24A5EE3F394BEC133BC432257EAD15A476AE609FE74379E7120853F13A1B080772BE5F162AD6945A25113B48862',
    plain: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'age' }, stringData: { key: 'value' } },
  },
  {
    file: 'flux-kustomize-controller/patches-merge1.yaml',
    keys: 'flux-kustomize-controller/keys/age.txt',
    format: 'yaml',
    dataKey: '1c15baa8e9b1775f5db7aabb0d1862485591ccd778c0ca2878992b64118325a7',
    mac: '76714B5AC33F8DCA6E643A59A9CDE3B0C13384DE9AD745979CF6EBD00EACDC9E5F3968079EB7A053BC3570ED907C612227AC4185B971D4B6DC63C49B77B27740',
    plain: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'secret' }, stringData: { key: 'merge1' } },
  },
  {
    file: 'flux-kustomize-controller/global-secret.yaml',
    keys: 'flux-kustomize-controller/keys/age-global.txt',
    format: 'yaml',
    dataKey: '95c21ac70e00e7cfc9c33cbaf95451176e458a504fe665a77f28ba93ff46b595',
    mac: 'F87D88951E6288CB29EAF85C9D738171AF10D9D9B5EE8E6311BFD154FB9BF8B1B6547AC288162AB0F342E8120641E6FF140B6901A165D230A1F53CF927F8C228',
    plain: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'global-age-secret', namespace: 'default' },
      type: 'Opaque',
      stringData: { key: 'global-value' },
    },
  },
  {
    file: 'flux-kustomize-controller/algorithms-age-pq.yaml',
    keys: 'flux-kustomize-controller/keys/age-pq.txt',
    format: 'yaml',
    dataKey: 'bf6be4009ce5de949f482d70825a646bfddf6da4b8a79ec8c07099ac53f25eed',
    mac: '024FE03695C446E693A8BFE44C9385543DDC67A1B04991DCA89B05821C5C5876FA1369C14889BB04F96DCE3DEDF2826D612156A74FE48346B0016E710BEAA7D3',
    plain: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'age-pq' }, stringData: { key: 'value' } },
  },
  {
    file: 'flux-kustomize-controller/envs-env.env',
    keys: 'flux-kustomize-controller/keys/age.txt',
    format: 'dotenv',
    dataKey: 'b8b84d1196e93186d08634f83ad4530fb33a4a875507fdb2222ce34ca7e8817d',
    mac: 'EC2C83EDECB60304D154EBDB85BDFAF61A92BD142E71C4F7B25A15B9CB5F3C0AE301CFB3569CF240E4470031385348BC296D8D99D09E06B26F09591A97527296',
    plain: { key: 'value' },
  },
  {
    file: 'flux-kustomize-controller/files-file.txt',
    keys: 'flux-kustomize-controller/keys/age.txt',
    format: 'binary',
    dataKey: '2b9dd3092b81188cf3dfe1a81fad156d4e9fbed77a543d7e03c50bc55c8a118f',
    mac: 'EC2C83EDECB60304D154EBDB85BDFAF61A92BD142E71C4F7B25A15B9CB5F3C0AE301CFB3569CF240E4470031385348BC296D8D99D09E06B26F09591A97527296',
    plain: { data: 'value' },
  },
];

describe('real sops files', () => {
  it.each(VECTORS_TABLE)('$file decrypts to its plaintext with the MAC sops stored', async (v) => {
    const text = read(v.file);
    const envelope = parseSops(text, v.format);
    const dataKey = await openDataKey(envelope.metadata.age, parseAgeIdentities(read(v.keys)));
    expect(Buffer.from(dataKey).toString('hex')).toBe(v.dataKey);
    const decrypted = await decryptSops(text, read(v.keys), { format: v.format });
    expect(decrypted.mac).toBe(v.mac);
    expect(plainDocument(decrypted)).toEqual(v.plain);
  });

  it('sops example.yaml: every type, list, comment and unencrypted suffix, with either key', async () => {
    const text = read('sops-pr1031/example.yaml');
    const lines = read('sops-pr1031/keys.txt')
      .split('\n')
      .filter((l) => l.startsWith('AGE-SECRET-KEY-'));
    expect(lines).toHaveLength(2);
    for (const identity of lines) {
      const decrypted = await decryptSops(text, [identity]);
      expect(decrypted.mac).toBe(
        '82187187F7F09465600C3C74AAAD50CACD0A9E9DEA376ECDB25002015714C5C0E79BD0D275F0B0CCDEF1587FB8FDB5C186FA9D33A816C0F5B7F0E5B96BCE5502',
      );
      const plain = plainDocument(decrypted) as Record<string, unknown> & { app2: { key: string } };
      expect(plain.app2.key.startsWith(RSA_KEY_START)).toBe(true);
      expect(plain.app2.key.endsWith(RSA_KEY_END)).toBe(true);
      expect({ ...plain, app2: { ...plain.app2, key: '' } }).toEqual({
        myapp1: 't00m4nys3cr3tzupdated',
        app2: { db: { user: 'eve', password: 'c4r1b0u' }, key: '' },
        number: 1234568000,
        an_array: ['secretuser1', 'secretuser2', 'somelongvalueAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'some other value'],
        somebooleans: [true, false],
        this: { is: { a: { nested: { value: 'with something secret in it' } } } },
        somelist_unencrypted: ['all elements of this list', 'remain in clear text', 'because of the _encrypted suffix in the key'],
        nested_unencrypted: { this: { is: { all: 'going to remain in clear text' } } },
      });
      // number is a float in the file (type:float), hashed as Go's FormatFloat 'f' text.
      expect(decrypted.documents[0]!.entries.find(([k]) => k === 'number')![1]).toEqual({ type: 'float', value: 1234568000 });
      expect(decrypted.comments.map((c) => [c.path.join(':') + ':', c.text, c.decrypted])).toEqual([
        ['app2:db:', ' private key for secret operations in app2', true],
        ['this:is:a:nested:', ' sops supports unencrypted fields', true],
        ['this:is:a:nested:', ' by adding the `_unencrypted` suffix', true],
        ['this:is:a:nested:', ' to any key', true],
      ]);
    }
  });

  it("sops's age example JSON and binary files open with the second key too", async () => {
    const second = read('sops-pr1031/keys.txt')
      .split('\n')
      .filter((l) => l.startsWith('AGE-SECRET-KEY-'))[1]!;
    for (const [file, format] of [
      ['sops-pr1031/example.json', 'json'],
      ['sops-pr1031/example.txt', 'binary'],
    ] as const) {
      const decrypted = await decryptSops(read(file), [second], { format });
      expect(decrypted.mac).toBe(VECTORS_TABLE.find((v) => v.file === file)!.mac);
    }
  });

  it('metadata of every version is read by name: age entries, lastmodified, rule, version', () => {
    const old = parseSops(read('sops-pr1031/example.yaml')).metadata;
    expect(old.age.map((a) => a.recipient)).toEqual([
      'age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw',
      'age1tmaae3ld5vpevmsh5yacsauzx8jetg300mpvc4ugp5zr5l6ssq9sla97ep',
    ]);
    expect(old).toMatchObject({ lastModified: '2022-03-15T22:11:15Z', version: '3.7.1', rule: { kind: 'unencrypted_suffix', value: '_unencrypted' } });
    const flux = parseSops(read('flux-kustomize-controller/algorithms-age-pq.yaml')).metadata;
    expect(flux).toMatchObject({ version: '3.12.1', rule: { kind: 'encrypted_regex', value: '^(data|stringData)$' }, otherKeyTypes: [] });
    expect(flux.age[0]!.recipient.startsWith('age1pq1')).toBe(true);
    const dotenv = parseSops(read('flux-kustomize-controller/envs-env.env'), 'dotenv').metadata;
    expect(dotenv).toMatchObject({ lastModified: '2024-11-12T13:33:42Z', version: '3.9.0', rule: { kind: 'unencrypted_suffix' } });
    expect(dotenv.age[0]!.enc.startsWith('-----BEGIN AGE ENCRYPTED FILE-----\n')).toBe(true);
  });

  it('flattened dotenv metadata is read in any order, as sops 3.7 wrote INI metadata', () => {
    const ini = read('sops-pr1031/example.ini');
    const sopsLines = ini
      .slice(ini.indexOf('[sops]\n') + 7)
      .split('\n')
      .filter((l) => l.includes(' = '))
      .map((l) => `sops_${l.replace(/ +=/, '=').replace('= ', '=')}`);
    const meta = parseSops(`key=value\n${sopsLines.join('\n')}\n`, 'dotenv').metadata;
    expect(sopsLines[1]!.startsWith('sops_age__list_0__map_recipient=')).toBe(true);
    expect(sopsLines[2]!.startsWith('sops_age__list_1__map_enc=')).toBe(true);
    expect(meta.age.map((a) => a.recipient)).toEqual([
      'age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw',
      'age1tmaae3ld5vpevmsh5yacsauzx8jetg300mpvc4ugp5zr5l6ssq9sla97ep',
    ]);
    expect(meta.age.every((a) => a.enc.startsWith('-----BEGIN AGE ENCRYPTED FILE-----\n'))).toBe(true);
    expect(meta).toMatchObject({ lastModified: '2022-03-15T22:12:10Z', version: '3.7.1' });
  });

  it('an identity that is not among the recipients cannot open the file', async () => {
    await expect(decryptSops(read('flux-kustomize-controller/global-secret.yaml'), read('flux-kustomize-controller/keys/age.txt'))).rejects.toThrow(
      SopsKeyError,
    );
  });

  it("sops's bare age layer test constant opens with its identity", async () => {
    const identities = parseAgeIdentities(read('sops-age-layer/mockIdentity.txt'));
    const d = new Decrypter();
    for (const id of identities) d.addIdentity(id);
    expect(await d.decrypt(armor.decode(read('sops-age-layer/mockEncryptedKey.age')), 'text')).toBe('data');
  });
});
