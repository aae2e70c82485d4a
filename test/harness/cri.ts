// A tiny CRI client: the kubelet's ImageStatus call (runtime.v1.ImageService)
// over gRPC on containerd's socket, with node:http2 and a few lines of protobuf,
// so a test asks for an image exactly as the kubelet does.

import { connect as http2Connect } from 'node:http2';
import { connect } from 'node:net';

export interface CriImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

function field(no: number, bytes: Buffer): Buffer {
  return Buffer.concat([varint((no << 3) | 2), varint(bytes.length), bytes]);
}

/** The length-delimited fields of a protobuf message, by field number (other wire types skipped). */
function fields(msg: Buffer): Map<number, Buffer[]> {
  const out = new Map<number, Buffer[]>();
  let i = 0;
  const readVarint = () => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = msg[i++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
      shift += 7;
    }
  };
  while (i < msg.length) {
    const key = readVarint();
    const no = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) readVarint();
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else if (wire === 2) {
      const len = readVarint();
      const list = out.get(no) ?? [];
      list.push(msg.subarray(i, i + len));
      out.set(no, list);
      i += len;
    } else throw new Error(`protobuf wire type ${wire} not supported`);
  }
  return out;
}

/**
 * CRI ImageStatus for `image`: the image CRI finds under that name, or
 * undefined when it finds none (the kubelet would pull).
 */
export async function criImageStatus(socket: string, image: string): Promise<CriImage | undefined> {
  const request = field(1, field(1, Buffer.from(image, 'utf8')));
  const frame = Buffer.alloc(5);
  frame.writeUInt32BE(request.length, 1);
  const session = http2Connect('http://localhost', { createConnection: () => connect(socket) });
  try {
    const body = await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('CRI ImageStatus timed out')), 10_000);
      const req = session.request({
        ':method': 'POST',
        ':path': '/runtime.v1.ImageService/ImageStatus',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      const chunks: Buffer[] = [];
      let status: string | undefined;
      let message = '';
      req.on('response', (h) => {
        if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
      });
      req.on('trailers', (h) => {
        status = String(h['grpc-status']);
        message = String(h['grpc-message'] ?? '');
      });
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        clearTimeout(timer);
        if (status !== '0') reject(new Error(`CRI ImageStatus ${image}: grpc-status ${status} ${decodeURIComponent(message)}`));
        else resolve(Buffer.concat(chunks));
      });
      req.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      req.end(Buffer.concat([frame, request]));
    });
    const payload = body.subarray(5, 5 + body.readUInt32BE(1));
    const img = fields(payload).get(1)?.[0];
    if (!img) return undefined;
    const f = fields(img);
    const strings = (no: number) => (f.get(no) ?? []).map((b) => b.toString('utf8'));
    return { id: strings(1)[0] ?? '', repoTags: strings(2), repoDigests: strings(3) };
  } finally {
    session.close();
  }
}
