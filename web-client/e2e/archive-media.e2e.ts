// The archive's camera.webm plays in real Chromium. Chromium's own encoders (WebCodecs) make
// real VP8 and Opus; they are written as the node's recorder writes them (VP8 in IVF, Opus in
// Ogg, index.json), `room-server make-archive` muxes them into WebM, and a <video> plays the
// result: frames decoded keep rising, currentTime advances, the duration is the recording's,
// and a seek lands. The archive room's own e2e (the player with its chat) builds on this.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WAIT, launchChromium, serverBinary } from "./harness";

let browser: Browser;
let work: string;

beforeAll(async () => {
  browser = await launchChromium();
  work = mkdtempSync(path.join(tmpdir(), "archive-media-"));
});

afterAll(async () => {
  await browser?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

// A page on a secure origin (WebCodecs needs one) served by the test itself.
const ORIGIN = "http://localhost:9";

async function page(files: Record<string, Buffer>): Promise<Page> {
  const p = await browser.newPage();
  p.setDefaultTimeout(WAIT);
  await p.route(`${ORIGIN}/**`, async (route) => {
    const name = new URL(route.request().url()).pathname.slice(1);
    if (name === "") return route.fulfill({ contentType: "text/html", body: "<!doctype html><title>archive</title>" });
    const body = files[name];
    if (!body) return route.fulfill({ status: 404, body: "" });
    // Byte ranges as the archive's HTTP API serves them: what lets Chromium seek.
    const range = /^bytes=(\d+)-(\d*)$/.exec(route.request().headers()["range"] ?? "");
    if (!range) return route.fulfill({ contentType: "video/webm", headers: { "accept-ranges": "bytes" }, body });
    const start = Number(range[1]);
    const end = range[2] ? Math.min(Number(range[2]), body.length - 1) : body.length - 1;
    return route.fulfill({
      status: 206,
      contentType: "video/webm",
      headers: { "accept-ranges": "bytes", "content-range": `bytes ${start}-${end}/${body.length}` },
      body: body.subarray(start, end + 1),
    });
  });
  await p.goto(`${ORIGIN}/`);
  return p;
}

type Chunk = { ts: number; key: boolean; data: string };

/** Three seconds of 320×240 VP8 at 30 fps (a keyframe a second) and 20 ms Opus packets. */
async function encode(p: Page): Promise<{ video: Chunk[]; audio: Chunk[] }> {
  return p.evaluate(async () => {
    const b64 = (c: EncodedVideoChunk | EncodedAudioChunk) => {
      const bytes = new Uint8Array(c.byteLength);
      c.copyTo(bytes);
      let s = "";
      for (const b of bytes) s += String.fromCharCode(b);
      return btoa(s);
    };
    const video: { ts: number; key: boolean; data: string }[] = [];
    const audio: { ts: number; key: boolean; data: string }[] = [];
    const ve = new VideoEncoder({
      output: (c) => video.push({ ts: c.timestamp, key: c.type === "key", data: b64(c) }),
      error: (e) => {
        throw e;
      },
    });
    ve.configure({ codec: "vp8", width: 320, height: 240, bitrate: 300_000, framerate: 30 });
    const canvas = new OffscreenCanvas(320, 240);
    const g = canvas.getContext("2d")!;
    for (let i = 0; i < 90; i++) {
      g.fillStyle = `hsl(${(i * 4) % 360} 80% 50%)`;
      g.fillRect(0, 0, 320, 240);
      g.fillStyle = "#fff";
      g.fillRect((i * 3) % 300, 100, 20, 20);
      const frame = new VideoFrame(canvas, { timestamp: Math.round((i * 1e6) / 30) });
      ve.encode(frame, { keyFrame: i % 30 === 0 });
      frame.close();
    }
    await ve.flush();
    const ae = new AudioEncoder({
      output: (c) => audio.push({ ts: c.timestamp, key: true, data: b64(c) }),
      error: (e) => {
        throw e;
      },
    });
    ae.configure({ codec: "opus", sampleRate: 48_000, numberOfChannels: 2, bitrate: 64_000 });
    for (let i = 0; i < 150; i++) {
      const samples = new Float32Array(960 * 2);
      for (let n = 0; n < 960; n++) samples[n] = samples[960 + n] = 0.2 * Math.sin((2 * Math.PI * 440 * (i * 960 + n)) / 48_000);
      const data = new AudioData({ format: "f32-planar", sampleRate: 48_000, numberOfFrames: 960, numberOfChannels: 2, timestamp: i * 20_000, data: samples });
      ae.encode(data);
      data.close();
    }
    await ae.flush();
    return { video, audio };
  });
}

function ivf(chunks: Chunk[]): Buffer {
  const header = Buffer.alloc(32);
  header.write("DKIF", 0, "latin1");
  header.writeUInt16LE(32, 6);
  header.write("VP80", 8, "latin1");
  header.writeUInt32LE(1000, 16);
  header.writeUInt32LE(1, 20);
  const parts = [header];
  for (const c of chunks) {
    const data = Buffer.from(c.data, "base64");
    const h = Buffer.alloc(12);
    h.writeUInt32LE(data.length, 0);
    h.writeBigUInt64LE(BigInt(Math.round(c.ts / 1000)), 4);
    parts.push(h, data);
  }
  return Buffer.concat(parts);
}

function oggPage(packet: Buffer, granule: bigint, seq: number, first: boolean): Buffer {
  const lacing: number[] = [];
  let left = packet.length;
  while (left >= 255) {
    lacing.push(255);
    left -= 255;
  }
  lacing.push(left);
  const h = Buffer.alloc(27);
  h.write("OggS", 0, "latin1");
  h.writeUInt8(first ? 2 : 0, 5);
  h.writeBigUInt64LE(granule, 6);
  h.writeUInt32LE(1, 14);
  h.writeUInt32LE(seq, 18);
  h.writeUInt8(lacing.length, 26);
  return Buffer.concat([h, Buffer.from(lacing), packet]);
}

function ogg(chunks: Chunk[]): Buffer {
  const head = Buffer.alloc(19);
  head.write("OpusHead", 0, "latin1");
  head.writeUInt8(1, 8);
  head.writeUInt8(2, 9);
  head.writeUInt32LE(48_000, 12);
  const tags = Buffer.alloc(16);
  tags.write("OpusTags", 0, "latin1");
  const pages = [oggPage(head, 0n, 0, true), oggPage(tags, 0n, 1, false)];
  chunks.forEach((c, i) => {
    const start = BigInt(Math.round((c.ts / 1e6) * 48_000));
    pages.push(oggPage(Buffer.from(c.data, "base64"), start + 960n, i + 2, false));
  });
  return Buffer.concat(pages);
}

describe("the archive's camera.webm", () => {
  it("plays in Chromium: frames decoded rising, currentTime advancing, seekable", async () => {
    const encoder = await page({});
    const { video, audio } = await encode(encoder);
    await encoder.close();
    expect(video.length).toBe(90);
    expect(audio.length).toBeGreaterThan(100);

    const t0 = 1_700_000_000_000;
    const rec = path.join(work, "rec");
    mkdirSync(rec, { recursive: true });
    writeFileSync(path.join(rec, "track-1-video.ivf"), ivf(video));
    writeFileSync(path.join(rec, "track-2-audio.ogg"), ogg(audio));
    const track = (file: string, kind: string, id: string) => ({
      file, kind, codec: kind === "video" ? "VP8" : "opus", stream_id: "camera", track_id: id,
      clock_rate: kind === "video" ? 90000 : 48000, first_rtp_timestamp: 0, first_unix_ms: t0,
      last_unix_ms: t0 + 3000, last_media_ms: 3000, frames: 0, complete: true, sync: [[0, t0]],
    });
    writeFileSync(
      path.join(rec, "index.json"),
      JSON.stringify({ format: "live-lecture-recording/1", recording: "e2e", created_unix_ms: t0, tracks: [track("track-1-video.ivf", "video", "v"), track("track-2-audio.ogg", "audio", "a")] }),
    );
    const out = path.join(work, "archive");
    const manifest = JSON.parse(
      execFileSync(serverBinary(), ["make-archive", "--out", out, "--recording", rec, "--lecture", "e2e", "--live-from-ms", `${t0}`, "--live-until-ms", `${t0 + 3000}`], { encoding: "utf8" }),
    );
    expect(manifest.tracks.map((t: { name: string }) => t.name)).toEqual(["camera.webm"]);

    const player = await page({ "camera.webm": readFileSync(path.join(out, "e2e", "camera.webm")) });
    const duration = await player.evaluate(async () => {
      const v = document.createElement("video");
      v.muted = true;
      v.src = "/camera.webm";
      document.body.append(v);
      await new Promise((ok, fail) => {
        v.onloadedmetadata = ok;
        v.onerror = () => fail(new Error(`media error ${v.error?.code}: ${v.error?.message}`));
      });
      (window as unknown as { v: HTMLVideoElement }).v = v;
      await v.play();
      return v.duration;
    });
    expect(Math.abs(duration - 3)).toBeLessThan(0.1);
    // Frames decoded keep rising and the clock advances while it plays.
    const sample = () =>
      player.evaluate(() => {
        const v = (window as unknown as { v: HTMLVideoElement }).v;
        return { frames: v.getVideoPlaybackQuality().totalVideoFrames, time: v.currentTime };
      });
    const first = await sample();
    await player.waitForFunction(
      (before) => {
        const v = (window as unknown as { v: HTMLVideoElement }).v;
        return v.getVideoPlaybackQuality().totalVideoFrames >= before.frames + 20 && v.currentTime >= before.time + 0.5;
      },
      first,
      { timeout: WAIT },
    );
    // A seek lands where asked.
    const landed = await player.evaluate(async () => {
      const v = (window as unknown as { v: HTMLVideoElement }).v;
      v.pause();
      v.currentTime = 2.0;
      await new Promise((ok) => (v.onseeked = ok));
      return v.currentTime;
    });
    expect(Math.abs(landed - 2.0)).toBeLessThan(0.05);
    await player.close();
  });
});
