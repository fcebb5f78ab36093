import type { MyLecture } from "@gate/MyLecture";
import type { Profile } from "@gate/Profile";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api } from "../api";
import { useNow } from "../hooks";
import { token } from "../auth";
import { gateErrorText } from "../errors";
import { formatDateTime, formatTime, t } from "../i18n";
import {
  enterLabel,
  fixFor,
  formatCountdown,
  isToday,
  lectureView,
  myPageOrder,
  needsRefresh,
  shownRefusal,
} from "../lectures";
import { navigate, onLinkClick } from "../router";
import type { MyArchive } from "../archive";
import { archiveStateText } from "./archive";

/** How often My page asks the gate again: often while a lecture waits for its instructor to
 * start (the card turns live when they do), rarely otherwise. */
const POLL_WAITING_MS = 10_000;
const POLL_MS = 30_000;

export function LecturesPage() {
  const [lectures, setLectures] = useState<MyLecture[] | null>(null);
  const [archives, setArchives] = useState<Map<string, MyArchive>>(new Map());
  const [company, setCompany] = useState(false);
  const waiting = useRef(false);
  const [error, setError] = useState<string | null>(null);
  const lastFetch = useRef(0);
  const now = useNow(1000);
  const signedIn = token() !== null;

  const load = () => {
    lastFetch.current = Date.now();
    api
      .myLectures()
      .then((r) => {
        setLectures(r.lectures);
        setCompany(r.company);
        waiting.current = r.lectures.some((l) => l.state.state === "doors_open");
        setError(null);
        // The archives of the lectures that are over: the Archive button and its state.
        if (r.lectures.some((l) => l.state.state === "ended" || l.state.state === "archive_available")) {
          api
            .myArchives()
            .then((a) => setArchives(new Map(a.archives.map((x) => [x.lecture, x]))))
            .catch(() => undefined);
        }
      })
      .catch((e: unknown) => {
        if (e instanceof ApiError && e.status === 401) navigate("/sign-in");
        else setError(e instanceof ApiError ? e.localized() : String(e));
      });
  };

  useEffect(() => {
    if (!signedIn) return;
    load();
    const id = setInterval(() => {
      if (waiting.current || Date.now() - lastFetch.current >= POLL_MS) load();
    }, POLL_WAITING_MS);
    return () => clearInterval(id);
  }, [signedIn]);

  // A countdown that ran out: the Enter button may have appeared.
  useEffect(() => {
    if (lectures && needsRefresh(lectures, now) && now - lastFetch.current > 5000) load();
  }, [now]);

  if (!signedIn) {
    return (
      <section class="page narrow">
        <h1>{t("lectures_title")}</h1>
        <p>{t("lectures_signed_out")}</p>
        <p>
          <a class="button" href="/sign-in" onClick={onLinkClick("/sign-in")}>
            {t("lectures_go_signin")}
          </a>
        </p>
      </section>
    );
  }

  return (
    <section class="page" aria-labelledby="lectures-title">
      <h1 id="lectures-title">{t("lectures_title")}</h1>
      {error && (
        <p class="error" role="alert">
          {error}{" "}
          <button type="button" onClick={load}>
            {t("retry")}
          </button>
        </p>
      )}
      {lectures === null && !error && <p>{t("loading")}</p>}
      {lectures?.length === 0 && <p>{t("lectures_empty")}</p>}
      {lectures && lectures.length > 0 && (
        <ul class="lectures">
          {myPageOrder(lectures, now).map((l) => (
            <LectureCard key={l.id} lecture={l} now={now} archive={archives.get(l.id)} />
          ))}
        </ul>
      )}
      {company ? (
        <p class="note company-note">{t("company_account_note")}</p>
      ) : (
        lectures !== null && (
          <ProfileForm
            missing={lectures.some((l) => l.entry.refusal?.error === "profile_incomplete")}
            onSaved={load}
          />
        )
      )}
    </section>
  );
}

function LectureCard({ lecture: l, now, archive }: { lecture: MyLecture; now: number; archive?: MyArchive | undefined }) {
  const view = lectureView(l.state);
  const staff = l.role !== "learner";
  // The archive's own state, once known, says more than the lecture's dates.
  const note = archive
    ? archive.state === "ready" && staff
      ? t("archive_ready_staff")
      : archiveStateText(archive)
    : view.note;
  const enter = enterLabel(l);
  const refusal = shownRefusal(l);
  // A countdown that has run out says nothing true: the fresh answer is on its way.
  const countdown = view.countdown && view.countdown.to > now ? view.countdown : null;
  const titleId = `lecture-${l.id}`;
  return (
    <li class={`card tone-${view.tone}`} aria-labelledby={titleId} data-lecture={l.id}>
      <div class="card-head">
        <h2 id={titleId}>{l.title}</h2>
        {isToday(l, now) && <span class="badge today">{t("lectures_today")}</span>}
        <span class={`badge tone-${view.tone}`}>{t(view.badge)}</span>
        {l.role !== "learner" && (
          <span class="badge role">{t(l.role === "instructor" ? "lecture_role_instructor" : "lecture_role_moderator")}</span>
        )}
      </div>
      <p class="when">
        {t("lecture_when", { start: formatDateTime(l.starts_at), end: formatTime(l.ends_at) })}
      </p>
      {countdown && (
        <p class="countdown" aria-live="off">
          {t(countdown.label, { time: formatCountdown(countdown.to - now) })}
        </p>
      )}
      {note && (
        <p class="note" data-archive-state={archive?.state}>
          {note}
        </p>
      )}
      {archive?.state === "ready" && (
        <p>
          <a class="button primary" href={`/archive/${encodeURIComponent(l.id)}`} onClick={onLinkClick(`/archive/${encodeURIComponent(l.id)}`)}>
            {t("archive_open")}
          </a>
        </p>
      )}
      {enter && (
        <p>
          <button type="button" class="primary" onClick={() => navigate(`/room/${encodeURIComponent(l.id)}`)}>
            {t(enter)}
          </button>
        </p>
      )}
      {refusal && (
        <div class="refusal" role="note" data-refusal={refusal}>
          <p>{gateErrorText(refusal, 403)}</p>
          <p>
            <strong>{t("what_to_do")}:</strong> {t(fixFor(refusal))}
          </p>
        </div>
      )}
    </li>
  );
}

function ProfileForm({ missing, onSaved }: { missing: boolean; onSaved: () => void }) {
  const [profile, setProfile] = useState<Profile | null>(null);
  const [nickname, setNickname] = useState("");
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);

  useEffect(() => {
    api
      .profile()
      .then((p) => {
        setProfile(p);
        setNickname(p.nickname ?? "");
      })
      .catch(() => setProfile(null));
  }, []);

  if (!profile) return null;
  const save = async (e: Event) => {
    e.preventDefault();
    try {
      const saved = await api.saveProfile({ ...profile, nickname: nickname.trim() });
      setProfile(saved);
      setMessage({ ok: true, text: t("profile_saved") });
      onSaved();
    } catch (err) {
      setMessage({ ok: false, text: t("profile_failed", { message: err instanceof ApiError ? err.localized() : String(err) }) });
    }
  };
  return (
    <form class={`profile ${missing ? "attention" : ""}`} onSubmit={(e) => void save(e)}>
      <h2>{t("profile_title")}</h2>
      {missing && <p class="error">{t("profile_missing")}</p>}
      <label for="nickname">{t("profile_title")}</label>
      <div class="row">
        <input
          id="nickname"
          value={nickname}
          maxLength={40}
          required
          aria-describedby="nickname-help"
          onInput={(e) => setNickname((e.currentTarget as HTMLInputElement).value)}
        />
        <button type="submit">{t("profile_save")}</button>
      </div>
      <p id="nickname-help" class="help">
        {t("profile_help")}
      </p>
      {message && (
        <p class={message.ok ? "ok" : "error"} role="status">
          {message.text}
        </p>
      )}
    </form>
  );
}
