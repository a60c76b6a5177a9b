/**
 * GPT-2's reversible byte ↔ character table. BPE works on strings, and every byte must be a
 * visible character that is not whitespace or a control code: printable Latin-1 bytes stand
 * for themselves; the other 68 bytes are shifted up to U+0100 and beyond (so a space, 0x20,
 * becomes "Ġ", U+0120).
 */
function buildByteToChar(): string[] {
  const table: string[] = new Array(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCharCode(printable ? b : 256 + shifted++);
  }
  return table;
}

export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));
