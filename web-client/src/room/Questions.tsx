// The questions pane: every question of the chat with its upvotes, in a bounded scrolling
// list. Learners upvote with a toggle button (pressed: your vote counts; pressing again takes
// it back); staff sort by votes or by time and mark questions answered.
import "./stafftools.css";
import type { ClientMsg } from "@protocol/ClientMsg";
import { useState } from "preact/hooks";
import { formatTime, t } from "../i18n";
import { type QuestionOrder, type RoomState, isStaff, mutedLearner, questionList } from "./state";

export function Questions({ state, send }: { state: RoomState; send: (m: ClientMsg) => boolean }) {
  const staff = isStaff(state);
  const [order, setOrder] = useState<QuestionOrder>(staff ? "votes" : "time");
  const questions = questionList(state, order);
  return (
    <section class="questions-pane" aria-labelledby="questions-pane-title" data-order={order}>
      <div class="questions-head">
        <h2 id="questions-pane-title">{t("questions_title")}</h2>
        <div class="questions-sort" role="group" aria-label={t("questions_sort")}>
          {(["votes", "time"] as const).map((o) => (
            <button
              type="button"
              key={o}
              class={order === o ? "link active" : "link"}
              aria-pressed={order === o}
              data-sort={o}
              onClick={() => setOrder(o)}
            >
              {o === "votes" ? t("questions_sort_votes") : t("questions_sort_time")}
            </button>
          ))}
        </div>
      </div>
      {questions.length === 0 ? (
        <p class="help">{t("questions_empty")}</p>
      ) : (
        <ol class="questions-list" tabIndex={0} aria-label={t("questions_title")}>
          {questions.map((q) => {
            const own = q.user === state.you.user;
            const voted = state.yourVotes.has(q.offset);
            return (
              <li key={q.offset} data-offset={q.offset} class={q.answered ? "answered" : ""}>
                <span class="question-votes" data-votes={q.votes}>
                  {t("questions_votes", { count: q.votes })}
                </span>
                <span class="question-body">
                  <span class="chat-meta">
                    <span class="nick">{q.nickname}</span>
                    {staff && mutedLearner(state, q.user, Date.now()) && (
                      <span class="muted-marker">{t("muted_marker")}</span>
                    )}
                    {q.answered && <span class="tag answered">{t("chat_badge_answered")}</span>}
                    <time class="at">{formatTime(q.at)}</time>
                  </span>
                  <span class="chat-text">{q.text}</span>
                </span>
                {!staff && !own && (
                  <button
                    type="button"
                    class={voted ? "primary upvote" : "upvote"}
                    aria-pressed={voted}
                    aria-label={t("questions_upvote_label", { nickname: q.nickname })}
                    onClick={() => send(voted ? { type: "unvote", offset: q.offset } : { type: "upvote", offset: q.offset })}
                  >
                    <span aria-hidden="true">▲</span> {t("questions_upvote")}
                  </button>
                )}
                {!staff && own && <span class="help">{t("questions_yours")}</span>}
                {staff && !q.answered && (
                  <button type="button" onClick={() => send({ type: "mark_answered", offset: q.offset })}>
                    {t("console_mark_answered")}
                  </button>
                )}
              </li>
            );
          })}
        </ol>
      )}
    </section>
  );
}
