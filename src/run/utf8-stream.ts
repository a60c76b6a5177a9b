const utf8 = new TextDecoder();

/**
 * Turns a stream of byte chunks (GPT-2's tokens) into whole characters. A CJK character or an
 * emoji often spans two or three tokens: its leading bytes are held until the rest arrive, so
 * nothing half-formed is ever printed. Bytes that can never form a character (a model is free
 * to emit them; random weights often do) are shown as <0xNN> rather than as U+FFFD, so what a
 * reader sees still says which bytes came out.
 */
export class Utf8Stream {
  private pending: number[] = [];

  /** Feeds bytes; returns the text that is now complete. */
  push(bytes: Uint8Array): string {
    let out = "";
    for (const b of bytes) {
      this.pending.push(b);
      out += this.drain(false);
    }
    return out;
  }

  /** Ends the stream: whatever is held can no longer complete. */
  flush(): string {
    return this.drain(true);
  }

  private drain(final: boolean): string {
    let out = "";
    while (this.pending.length > 0) {
      const need = sequenceLength(this.pending[0]);
      if (need === 0) {
        out += invalid(this.pending.shift()!);
        continue;
      }
      let ok = true;
      for (let i = 1; i < Math.min(need, this.pending.length); i++) {
        if (!continuationFits(this.pending[0], i, this.pending[i])) {
          ok = false;
          break;
        }
      }
      if (!ok) {
        out += invalid(this.pending.shift()!);
        continue;
      }
      if (this.pending.length < need) {
        if (final) {
          out += invalid(this.pending.shift()!);
          continue;
        }
        break;
      }
      out += utf8.decode(Uint8Array.from(this.pending.splice(0, need)));
    }
    return out;
  }
}

/** Bytes in the sequence a lead byte starts; 0 for a byte that cannot start one. */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

/** Whether byte `b` may stand at position i of a sequence led by `lead` (no overlongs, surrogates or > U+10FFFF). */
function continuationFits(lead: number, i: number, b: number): boolean {
  if (i === 1) {
    if (lead === 0xe0) return b >= 0xa0 && b <= 0xbf;
    if (lead === 0xed) return b >= 0x80 && b <= 0x9f;
    if (lead === 0xf0) return b >= 0x90 && b <= 0xbf;
    if (lead === 0xf4) return b >= 0x80 && b <= 0x8f;
  }
  return b >= 0x80 && b <= 0xbf;
}

function invalid(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
}

/** Bytes rendered exactly as the stream would show them, incomplete or invalid bytes as <0xNN>. */
export function renderUtf8(bytes: Uint8Array): string {
  const stream = new Utf8Stream();
  return stream.push(bytes) + stream.flush();
}
