// Damage a bundle on purpose: one byte changed in place.
import { open } from 'node:fs/promises';

/** Changes the byte at `position` of `file` (default: flips its lowest bit). */
export async function changeByte(file: string, position: number, change: (b: number) => number = (b) => b ^ 0x01): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, position);
    b[0] = change(b[0]!);
    await fh.write(b, 0, 1, position);
  } finally {
    await fh.close();
  }
}
