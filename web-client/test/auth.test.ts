import { describe, expect, it } from "vitest";
import { STATE_KEY, type StateStore, adoptHandOff, beginPortalSignIn, portalSignInAddress, randomState } from "../src/auth";

/** A tab's sessionStorage, in memory. */
function tab(): StateStore & { items: Map<string, string> } {
  const items = new Map<string, string>();
  return {
    items,
    getItem: (k) => items.get(k) ?? null,
    setItem: (k, v) => void items.set(k, v),
    removeItem: (k) => void items.delete(k),
  };
}

const TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0YXJvIn0.c2ln";

describe("the portal's sign-in hand-off", () => {
  it("sends the person to the portal with a fresh state and the way back, keeping the portal's own parameters", () => {
    const store = tab();
    const address = new URL(
      beginPortalSignIn("https://portal.example.jp/sign-in?site=rooms", "https://rooms.example.jp/lectures", store, "s-1"),
    );
    expect(address.origin + address.pathname).toBe("https://portal.example.jp/sign-in");
    expect(address.searchParams.get("site")).toBe("rooms");
    expect(address.searchParams.get("state")).toBe("s-1");
    expect(address.searchParams.get("return_to")).toBe("https://rooms.example.jp/lectures");
    expect(store.items.get(STATE_KEY)).toBe("s-1");
    expect(portalSignInAddress("https://p.example/x", "a b", "r")).toBe("https://p.example/x?state=a+b&return_to=r");
  });

  it("draws states that cannot be guessed and fit in an address", () => {
    const a = randomState();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(randomState()).not.toBe(a);
    expect(randomState(new Uint8Array([0xfb, 0xff]))).toBe("-_8");
  });

  it("adopts a token that comes back with the state this tab keeps", () => {
    const store = tab();
    beginPortalSignIn("https://portal.example.jp/sign-in", "https://rooms.example.jp/lectures", store, "s-1");
    expect(adoptHandOff(`#token=${encodeURIComponent(TOKEN)}&state=s-1`, store)).toEqual({ outcome: "adopted", token: TOKEN });
    // In either order.
    beginPortalSignIn("https://portal.example.jp/sign-in", "https://rooms.example.jp/lectures", store, "s-2");
    expect(adoptHandOff(`#state=s-2&token=${TOKEN}`, store).outcome).toBe("adopted");
  });

  it("refuses a token with no state, another state, or when this tab started no sign-in", () => {
    const store = tab();
    expect(adoptHandOff(`#token=${TOKEN}&state=s-1`, store)).toEqual({ outcome: "refused" });
    beginPortalSignIn("https://portal.example.jp/sign-in", "https://rooms.example.jp/lectures", store, "s-1");
    expect(adoptHandOff(`#token=${TOKEN}`, store)).toEqual({ outcome: "refused" });
    beginPortalSignIn("https://portal.example.jp/sign-in", "https://rooms.example.jp/lectures", store, "s-1");
    expect(adoptHandOff(`#token=${TOKEN}&state=attacker`, store)).toEqual({ outcome: "refused" });
    beginPortalSignIn("https://portal.example.jp/sign-in", "https://rooms.example.jp/lectures", store, "s-1");
    expect(adoptHandOff(`#token=${TOKEN}&state=`, store)).toEqual({ outcome: "refused" });
    // An empty state never matches a tab that keeps none.
    expect(adoptHandOff(`#token=${TOKEN}&state=`, tab())).toEqual({ outcome: "refused" });
  });

  it("takes a state once: the same answer again, or a foreign one first, is refused", () => {
    const store = tab();
    beginPortalSignIn("https://portal.example.jp/sign-in", "https://rooms.example.jp/lectures", store, "s-1");
    const answer = `#token=${TOKEN}&state=s-1`;
    expect(adoptHandOff(answer, store).outcome).toBe("adopted");
    expect(store.items.has(STATE_KEY)).toBe(false);
    expect(adoptHandOff(answer, store).outcome).toBe("refused");

    beginPortalSignIn("https://portal.example.jp/sign-in", "https://rooms.example.jp/lectures", store, "s-2");
    expect(adoptHandOff(`#token=${TOKEN}&state=wrong`, store).outcome).toBe("refused");
    expect(adoptHandOff(`#token=${TOKEN}&state=s-2`, store).outcome).toBe("refused");
  });

  it("leaves fragments without a token alone, and the pending state with them", () => {
    const store = tab();
    beginPortalSignIn("https://portal.example.jp/sign-in", "https://rooms.example.jp/lectures", store, "s-1");
    expect(adoptHandOff("", store)).toEqual({ outcome: "none" });
    expect(adoptHandOff("#main", store)).toEqual({ outcome: "none" });
    expect(adoptHandOff("#state=s-1", store)).toEqual({ outcome: "none" });
    expect(store.items.get(STATE_KEY)).toBe("s-1");
  });
});
