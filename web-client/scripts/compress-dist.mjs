// After `vite build`: writes a brotli (`.br`) and a gzip (`.gz`) copy beside every text file of
// dist/, which room-server hands to browsers that accept them (src/web.rs) — about a third of
// the bytes, compressed once here instead of on every request. A copy that would not be
// smaller is not written.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const TEXT = /\.(html|js|mjs|css|svg|json|txt|webmanifest|xml)$/;

export function compressDir(dir) {
  const written = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      written.push(...compressDir(file));
      continue;
    }
    if (!TEXT.test(entry.name)) continue;
    const raw = readFileSync(file);
    const copies = [
      [".gz", gzipSync(raw, { level: 9 })],
      [
        ".br",
        brotliCompressSync(raw, {
          params: {
            [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
            [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
          },
        }),
      ],
    ];
    for (const [ext, bytes] of copies) {
      if (bytes.length >= raw.length) continue;
      writeFileSync(file + ext, bytes);
      written.push({ file: file + ext, from: raw.length, to: bytes.length });
    }
  }
  return written;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "dist");
  compressDir(dist);
}
