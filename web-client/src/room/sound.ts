// The "you are called on" chime: two short tones made with Web Audio (no sound file to load).
let ctx: AudioContext | null = null;

/** Plays the chime; resolves to whether the browser let it sound (autoplay rules may not). */
export async function chime(): Promise<boolean> {
  try {
    ctx ??= new AudioContext();
    await Promise.race([ctx.resume(), new Promise((r) => setTimeout(r, 500))]);
    if (ctx.state !== "running") return false;
    const start = ctx.currentTime + 0.02;
    [880, 1320].forEach((freq, i) => {
      const osc = ctx!.createOscillator();
      const gain = ctx!.createGain();
      osc.type = "sine";
      osc.frequency.value = freq;
      const t0 = start + i * 0.22;
      gain.gain.setValueAtTime(0.0001, t0);
      gain.gain.exponentialRampToValueAtTime(0.25, t0 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.2);
      osc.connect(gain).connect(ctx!.destination);
      osc.start(t0);
      osc.stop(t0 + 0.21);
    });
    return true;
  } catch {
    // No audio (blocked or unsupported): the visual notice remains.
    return false;
  }
}
