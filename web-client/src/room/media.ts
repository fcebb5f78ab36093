// The instructor's video over WebRTC. The node is a selective forwarding unit: the instructor's
// browser offers its camera, microphone and screen share (Publisher); every other person
// receives them, the node offering (Viewer). Offers, answers and ICE candidates travel over the
// room connection (docs/protocol.md, "Media").
import type { ClientMsg } from "@protocol/ClientMsg";
import type { IceCandidate } from "@protocol/IceCandidate";
import type { IceServer } from "@protocol/IceServer";

type Send = (msg: ClientMsg) => boolean;

function toRtcServers(servers: IceServer[]): RTCIceServer[] {
  return servers.map((s) => ({
    urls: s.urls,
    username: s.username ?? undefined,
    credential: s.credential ?? undefined,
  }));
}

function toWire(c: RTCIceCandidate): IceCandidate {
  return {
    candidate: c.candidate,
    sdp_mid: c.sdpMid ?? null,
    sdp_mline_index: c.sdpMLineIndex ?? null,
    username_fragment: c.usernameFragment ?? null,
  };
}

function fromWire(c: IceCandidate): RTCIceCandidateInit {
  return {
    candidate: c.candidate,
    sdpMid: c.sdp_mid ?? undefined,
    sdpMLineIndex: c.sdp_mline_index ?? undefined,
    usernameFragment: c.username_fragment ?? undefined,
  };
}

/** What a viewer shows: the camera (with the microphone) and the screen share when it is on. */
export interface ViewerStreams {
  camera: MediaStream | null;
  screen: MediaStream | null;
}

/** Receives the instructor's tracks. */
export class Viewer {
  private pc: RTCPeerConnection | null = null;
  private servers: RTCIceServer[] = [];
  private pending: RTCIceCandidateInit[] = [];
  streams: ViewerStreams = { camera: null, screen: null };
  /** Frames decoded so far, from getStats (shown as the connection's health, read by tests). */
  framesDecoded = 0;
  private statsTimer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly send: Send,
    private readonly changed: () => void,
  ) {}

  configure(servers: IceServer[]): void {
    this.servers = toRtcServers(servers);
  }

  async offer(sdp: string): Promise<void> {
    const pc = this.pc ?? this.open();
    await pc.setRemoteDescription({ type: "offer", sdp });
    for (const c of this.pending.splice(0)) await pc.addIceCandidate(c).catch(() => {});
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.send({ type: "media_answer", sdp: answer.sdp ?? "" });
  }

  async candidate(c: IceCandidate): Promise<void> {
    if (!this.pc || !this.pc.remoteDescription) {
      this.pending.push(fromWire(c));
      return;
    }
    await this.pc.addIceCandidate(fromWire(c)).catch(() => {});
  }

  private open(): RTCPeerConnection {
    const pc = new RTCPeerConnection({ iceServers: this.servers });
    this.pc = pc;
    pc.onicecandidate = (e) => {
      if (e.candidate && e.candidate.candidate) this.send({ type: "media_candidate", candidate: toWire(e.candidate) });
    };
    pc.ontrack = (e) => {
      // The first video track is the camera (with the microphone); a later one is the screen.
      if (e.track.kind === "audio") {
        this.streams.camera ??= new MediaStream();
        this.streams.camera.addTrack(e.track);
      } else if (!this.streams.camera || this.streams.camera.getVideoTracks().length === 0) {
        this.streams.camera ??= new MediaStream();
        this.streams.camera.addTrack(e.track);
      } else {
        this.streams.screen = new MediaStream([e.track]);
      }
      e.track.onended = () => this.forget(e.track);
      this.streams = { ...this.streams };
      this.changed();
    };
    this.statsTimer = setInterval(() => void this.readStats(), 1000);
    return pc;
  }

  private forget(track: MediaStreamTrack): void {
    if (this.streams.screen?.getTracks().includes(track)) this.streams = { ...this.streams, screen: null };
    this.changed();
  }

  private async readStats(): Promise<void> {
    if (!this.pc) return;
    const report = await this.pc.getStats();
    let frames = 0;
    report.forEach((s: { type: string; kind?: string; framesDecoded?: number }) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded ?? 0;
    });
    if (frames !== this.framesDecoded) {
      this.framesDecoded = frames;
      this.changed();
    }
  }

  /** The node stopped sending (the lecture left live, or the instructor stopped). */
  stop(): void {
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.statsTimer = null;
    this.pc?.close();
    this.pc = null;
    this.pending = [];
    this.streams = { camera: null, screen: null };
    this.changed();
  }
}

/** Sends the instructor's camera, microphone and screen share. */
export class Publisher {
  private pc: RTCPeerConnection | null = null;
  private servers: RTCIceServer[] = [];
  private screenSenders: RTCRtpSender[] = [];
  camera: MediaStream | null = null;
  screen: MediaStream | null = null;
  error: string | null = null;

  constructor(
    private send: Send,
    private readonly changed: () => void,
  ) {}

  configure(servers: IceServer[]): void {
    this.servers = toRtcServers(servers);
  }

  get live(): boolean {
    return this.pc !== null;
  }

  async start(): Promise<void> {
    try {
      this.camera ??= await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
        audio: true,
      });
      this.error = null;
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
      this.changed();
      return;
    }
    await this.connect();
  }

  /** A new peer connection with what is being sent (first start, or after a reconnect). */
  async connect(): Promise<void> {
    if (!this.camera) return;
    this.pc?.close();
    const pc = new RTCPeerConnection({ iceServers: this.servers });
    this.pc = pc;
    pc.onicecandidate = (e) => {
      if (e.candidate && e.candidate.candidate) this.send({ type: "media_candidate", candidate: toWire(e.candidate) });
    };
    for (const track of this.camera.getTracks()) pc.addTransceiver(track, { direction: "sendonly", streams: [this.camera] });
    this.screenSenders = [];
    if (this.screen) {
      for (const track of this.screen.getVideoTracks()) {
        this.screenSenders.push(pc.addTransceiver(track, { direction: "sendonly", streams: [this.screen] }).sender);
      }
    }
    this.changed();
    await this.negotiate();
  }

  private async negotiate(): Promise<void> {
    if (!this.pc) return;
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    this.send({ type: "media_offer", sdp: offer.sdp ?? "" });
  }

  async answer(sdp: string): Promise<void> {
    await this.pc?.setRemoteDescription({ type: "answer", sdp });
  }

  async candidate(c: IceCandidate): Promise<void> {
    await this.pc?.addIceCandidate(fromWire(c)).catch(() => {});
  }

  async shareScreen(): Promise<void> {
    if (!this.pc || this.screen) return;
    try {
      this.screen = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
      this.changed();
      return;
    }
    const track = this.screen.getVideoTracks()[0];
    if (!track) return;
    track.onended = () => void this.stopScreen();
    this.screenSenders = [this.pc.addTransceiver(track, { direction: "sendonly", streams: [this.screen] }).sender];
    this.changed();
    await this.negotiate();
  }

  async stopScreen(): Promise<void> {
    if (!this.screen) return;
    for (const t of this.screen.getTracks()) t.stop();
    this.screen = null;
    if (this.pc) {
      for (const sender of this.screenSenders) this.pc.removeTrack(sender);
      this.screenSenders = [];
      await this.negotiate();
    }
    this.changed();
  }

  stop(): void {
    this.send({ type: "media_stop" });
    this.pc?.close();
    this.pc = null;
    for (const s of [this.camera, this.screen]) s?.getTracks().forEach((t) => t.stop());
    this.camera = null;
    this.screen = null;
    this.changed();
  }
}
