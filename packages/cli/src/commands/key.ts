/** `ferry key generate NAME`: an Ed25519 key pair, NAME.key (0600) and NAME.pub. */
import { generateKeyPair } from '@ferry/bundler';
import type { Context } from '../context.js';

export async function keyGenerateCommand(ctx: Context, name: string): Promise<void> {
  const k = await generateKeyPair(name);
  ctx.result(`wrote ${k.privatePath} (private, keep it safe) and ${k.publicPath}\nfingerprint ${k.fingerprint}`, k);
}
