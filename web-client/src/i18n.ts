// Japanese first, English second. Every string a person reads is here, under one key in both
// languages; a test checks that the two dictionaries have the same keys and placeholders.

export type Lang = "ja" | "en";

const ja = {
  app_title: "ネットライブ講座",
  skip_to_main: "本文へ移動",
  language: "言語",
  lang_ja: "日本語",
  lang_en: "English",
  sign_out: "サインアウト",
  nav_lectures: "マイページ",
  nav_check: "接続環境チェック",
  loading: "読み込み中…",
  retry: "再試行",
  back_to_lectures: "マイページへ戻る",

  signin_title: "サインイン",
  signin_portal: "ポータルサイトでサインイン",
  signin_handoff_refused:
    "このページから始めたサインインではないため、サインインしませんでした。お手数ですが、もう一度サインインしてください。",
  signin_intro: "デモのために用意された受講者・講師から一人を選んでください。",
  signin_as: "{id} としてサインイン",
  signin_portal_only:
    "このサーバーはデモモードではありません。講座を購入したポータルサイトからお入りください。",
  signin_failed: "サインインできませんでした: {message}",

  lectures_title: "受講予定の講座",
  lectures_empty: "受講できる講座はまだありません。",
  lectures_signed_out: "講座を見るにはサインインが必要です。",
  lectures_go_signin: "サインインへ",
  lecture_when: "{start} 〜 {end}",
  lecture_role_instructor: "講師",
  lecture_role_moderator: "モデレーター",
  state_before_doors: "配信開始前",
  state_doors_open: "入室受付中",
  state_live: "配信中",
  state_ended: "終了",
  state_archive: "アーカイブ公開中",
  state_cancelled: "中止",
  countdown_doors: "入室開始まで {time}",
  countdown_start: "開始まで {time}",
  archive_expected: "アーカイブは {date} 公開予定です。",
  archive_soon: "アーカイブの公開をお待ちください。",
  archive_since: "{date} から公開中です。何度でもご覧いただけます。",
  archive_player_pending: "アーカイブ再生ページは準備中です。",
  cancelled_reason: "理由: {reason}",
  enter: "入室する",
  enter_staff: "講師として入室",
  entering: "入室しています…",
  what_to_do: "対処方法",
  fix_payment_pending:
    "コンビニでのお支払いが確認され次第、入室できます。お支払い後にこのページを再読み込みしてください。",
  fix_not_purchased: "この講座を購入すると入室できます。ポータルサイトからお申し込みください。",
  fix_purchase_cancelled: "お申し込みは取り消されています。ご不明な点はサポートへお問い合わせください。",
  fix_corporate_account_cannot_enter:
    "法人管理者アカウントでは入室できません。社員の方に席を割り当ててください。",
  fix_seat_not_allocated: "所属会社の担当者に、この講座の席の割り当てを依頼してください。",
  fix_profile_incomplete: "下の「ニックネーム」を設定すると入室できます。",
  fix_nickname_taken_by_staff:
    "ニックネームがこの講座の講師またはモデレーターの名前と同じです。下の「ニックネーム」を別の名前に変更すると入室できます。",
  fix_banned:
    "講師またはモデレーターにより退室となったため、この講座には再入室できません。お心当たりがない場合は、講座を購入したポータルサイトのサポートへお問い合わせください。",
  fix_doors_not_open: "開始の1時間前から入室できます。",
  fix_lecture_ended: "講座は終了しました。アーカイブの公開をお待ちください。",
  fix_lecture_cancelled: "講座は中止されました。返金についてはポータルサイトのお知らせをご覧ください。",
  fix_generic: "時間をおいてもう一度お試しください。",

  profile_title: "ニックネーム",
  profile_help: "講座の座席とチャットに表示される名前です（1〜40文字）。",
  profile_missing: "ニックネームが未設定です。設定するまで入室できません。",
  profile_save: "保存",
  profile_saved: "保存しました。",
  profile_failed: "保存できませんでした: {message}",

  room_video: "講師の映像",
  video_waiting: "配信開始までお待ちください",
  video_waiting_start: "開始予定 {time}",
  video_scheduled: "まだ入室受付前です",
  video_live: "配信中",
  video_live_pending: "映像は講師の配信開始とともにここに表示されます。",
  video_ended: "講座は終了しました",
  video_cancelled: "講座は中止されました",
  status_connecting: "接続しています…",
  status_connected: "接続中",
  status_reconnecting: "接続が切れました。再接続しています…（{seconds}秒後）",
  status_reconnecting_now: "再接続しています…",
  status_degraded: "サーバー間の通信が一時的に途絶えています。操作は復旧後に反映されます。",
  status_closed: "退室しました",
  present: "{count}人が参加中",
  leave: "退室する",
  leave_confirm: "退室しますか？",

  seats_title: "座席",
  seats_grid_label: "座席表（矢印キーで移動、Enter で着席）",
  seats_grid_label_staff: "座席表（矢印キーで移動、Enter で指名）",
  seat_name: "{row}列{col}番",
  seat_empty: "空席",
  seat_yours: "あなたの席",
  seat_away: "{nickname}（離席中）",
  seat_taken: "着席中",
  seat_taken_away: "着席中（離席中）",
  seat_held_for: "{nickname}",
  your_seat: "あなたの席: {seat}",
  no_seat: "空いている席をクリックして着席してください。",
  stand_up: "席を立つ",
  zoom_in: "拡大",
  zoom_out: "縮小",

  chat_title: "チャット",
  chat_log_label: "チャットのメッセージ",
  chat_input: "メッセージ",
  chat_question: "質問として送る",
  chat_send: "送信",
  chat_unsent: "送信中…",
  chat_deleted: "（このメッセージは削除されました）",
  chat_badge_question: "質問",
  chat_badge_answered: "回答済み",
  chat_badge_call_answer: "指名への回答",
  chat_badge_instructor: "講師",
  chat_badge_moderator: "モデレーター",
  chat_new_messages: "新着 {count} 件 ↓",
  chat_new_messages_label: "新着メッセージ {count} 件へ移動",
  chat_list_help: "上下の矢印キーでメッセージを移動し、Enter キーで操作メニューを開きます。",
  chat_line_actions: "{nickname} さんのメッセージの操作",
  chat_announce_summary: "新しいメッセージ {count} 件",
  chat_announce_summary_questions: "新しいメッセージ {count} 件（うち質問 {questions} 件）",
  chat_announce_question: "{nickname} さんの質問: {text}",
  chat_announce_call_answer: "{nickname} さんの指名への回答: {text}",
  chat_announce_line: "{nickname}: {text}",
  chat_muted: "{time} までチャットできません（ミュート中）。",
  chat_too_long: "{max}文字以内で入力してください。",
  chat_empty: "まだメッセージはありません。",

  media_title: "映像配信",
  media_start: "カメラとマイクで配信を始める",
  media_share: "画面を共有する",
  media_unshare: "画面共有を止める",
  media_stop: "配信を止める",
  media_preview: "送信中のカメラ映像",
  media_camera: "講師の映像",
  media_screen: "共有画面",
  media_error: "カメラ・マイクを使えませんでした: {message}",
  media_help: "受講者には講座の開始（配信中）から映像が届きます。開始前はここで映りを確認できます。",
  media_play: "映像と音声を再生する",
    announcement: "お知らせ",
  called_on_you: "あなたが指名されました（{by}）。チャットで回答してください。",
  called_on_other: "{nickname} さんが指名されています",
  dismiss: "閉じる",
  sound_blocked: "（ブラウザーの設定で通知音が鳴りませんでした。画面を一度クリックすると次から鳴ります）",

  emotions_title: "リアクション",
  emotion_press: "{label} を送る",
  bursts_label: "みんなのリアクション",

  console_title: "講師コンソール",
  console_start: "講座を開始する",
  console_end: "講座を終了する",
  console_end_confirm: "講座を終了しますか？全員が退室します。",
  console_phase: "状態: {phase}",
  phase_scheduled: "入室受付前",
  phase_doors_open: "入室受付中（開始前）",
  phase_live: "配信中",
  phase_ended: "終了",
  phase_cancelled: "中止",
  console_announce: "お知らせを掲示",
  console_announce_input: "お知らせの内容",
  console_announce_clear: "お知らせを外す",
  console_call: "指名",
  console_call_input: "ニックネームで指名",
  console_call_button: "指名する",
  console_call_clear: "指名を解除",
  console_call_answered: "回答がありました",
  console_call_waiting: "回答待ち",
  console_selected: "選択中の席: {seat}",
  console_select_hint: "座席をクリックするとその受講者を指名します。",
  console_meter: "リアクションメーター",
  console_meter_chart: "直近{minutes}分のリアクション数（5秒ごと）",
  console_meter_totals: "合計",
  console_meter_window: "直近1分",
  console_questions: "質問",
  console_questions_empty: "未回答の質問はありません。",
  console_mark_answered: "回答済みにする",
  console_delete: "削除",
  console_mute: "ミュート…",
  console_mute_title: "{nickname} さんをミュートする時間",
  console_mute_minutes: "{minutes}分",
  console_mute_until_end: "講座の終了まで",
  console_call_this: "この受講者を指名",
  console_remove: "退室させる…",
  console_remove_confirm: "{nickname} さんを退室させますか？",
  console_remove_may_return: "退室させる（再入室できる）",
  console_remove_no_return: "退室させる（再入室させない）",
  console_menu_back: "戻る",

  closed_4103: "講師により退室となりました。",
  closed_4104: "この講座には入室できなくなりました。",
  closed_4105: "講座は終了しました。ご参加ありがとうございました。",
  closed_4106: "講座は中止されました。",
  closed_4111: "まだ入室受付前です。",
  closed_4112: "別の画面（タブ）でこの講座に入室したため、こちらは閉じました。",
  closed_4113: "受講資格が取り消されたため退室となりました。",
  closed_generic: "接続を続けられませんでした（コード {code}）。",
  closed_left: "退室しました。",
  enter_again: "もう一度入室する",

  error_rate_limited: "操作が多すぎます。少し待ってからお試しください。",
  error_network: "サーバーに接続できません。ネットワークを確認してください。",
  error_signed_out: "サインインの有効期限が切れました。もう一度サインインしてください。",
  error_generic: "操作できませんでした: {message}",

  check_title: "接続環境チェック",
  check_intro: "講座に参加する前に、お使いのブラウザーと回線を確認します。",
  check_run: "もう一度チェックする",
  check_running: "確認中…",
  check_pass: "OK",
  check_fail: "要対応",
  check_warn: "注意",
  check_na: "—",
  check_browser: "ブラウザーの対応",
  check_browser_ok: "WebSocket と WebRTC に対応しています。",
  check_browser_fail: "このブラウザーは必要な機能に対応していません。最新の Chrome、Edge、Safari、Firefox をお使いください。",
  check_codecs: "対応している映像・音声形式: {codecs}",
  check_rtt: "サーバーとの往復時間",
  check_rtt_value: "{ms} ミリ秒（中央値）",
  check_rtt_fail:
    "サーバーに接続できませんでした。社内ネットワークやセキュリティソフトが WebSocket を遮断していないか確認してください。",
  check_rtt_slow: "応答が遅めです。チャットやリアクションの表示が遅れることがあります。",
  check_download: "受信速度",
  check_download_value: "{mbps} Mbps（基準 1 Mbps）",
  check_download_fail:
    "受信速度が 1 Mbps に届きません。映像が止まる場合があります。Wi-Fi の近くに移動するか、有線接続をお試しください。",
  check_download_error: "速度を測れませんでした。回線の接続を確認してください。",
  check_webrtc: "映像の受信（WebRTC）",
  check_webrtc_value: "サーバーと接続できました（{ms} ミリ秒）",
  check_webrtc_fail:
    "映像用の接続（WebRTC）ができませんでした。社内ネットワークで UDP が遮断されている可能性があります。ネットワーク管理者にご相談いただくか、別の回線でお試しください。",
  check_webrtc_busy: "サーバーが混み合っているため、映像用の接続を確認できませんでした。1 分ほどおいてから、もう一度お試しください。",
} as const;

export type Key = keyof typeof ja;

const en: Record<Key, string> = {
  app_title: "Net-live lectures",
  skip_to_main: "Skip to content",
  language: "Language",
  lang_ja: "日本語",
  lang_en: "English",
  sign_out: "Sign out",
  nav_lectures: "My page",
  nav_check: "Connection check",
  loading: "Loading…",
  retry: "Try again",
  back_to_lectures: "Back to My page",

  signin_title: "Sign in",
  signin_portal: "Sign in through the portal",
  signin_handoff_refused:
    "That sign-in was not started from this page, so nobody was signed in. Please sign in again.",
  signin_intro: "Pick one of the demo learners or instructors.",
  signin_as: "Sign in as {id}",
  signin_portal_only:
    "This server is not in demo mode. Please come in through the portal where you bought the lecture.",
  signin_failed: "Could not sign in: {message}",

  lectures_title: "Your lectures",
  lectures_empty: "You have no lectures yet.",
  lectures_signed_out: "Sign in to see your lectures.",
  lectures_go_signin: "Sign in",
  lecture_when: "{start} – {end}",
  lecture_role_instructor: "Instructor",
  lecture_role_moderator: "Moderator",
  state_before_doors: "Before delivery",
  state_doors_open: "Doors open",
  state_live: "Live",
  state_ended: "Ended",
  state_archive: "Archive available",
  state_cancelled: "Cancelled",
  countdown_doors: "Doors open in {time}",
  countdown_start: "Starts in {time}",
  archive_expected: "The archive is expected on {date}.",
  archive_soon: "The archive will be published soon.",
  archive_since: "Available since {date}; watch it as often as you like.",
  archive_player_pending: "The archive player is not available yet.",
  cancelled_reason: "Reason: {reason}",
  enter: "Enter",
  enter_staff: "Enter as staff",
  entering: "Entering…",
  what_to_do: "What to do",
  fix_payment_pending:
    "You can enter as soon as your konbini payment is confirmed. Reload this page after paying.",
  fix_not_purchased: "Buy this lecture on the portal to enter.",
  fix_purchase_cancelled: "Your purchase was cancelled. Contact support if this is unexpected.",
  fix_corporate_account_cannot_enter:
    "A corporate admin account cannot enter. Allocate the seat to an employee instead.",
  fix_seat_not_allocated: "Ask your company's administrator to allocate a seat of this lecture to you.",
  fix_profile_incomplete: "Set your nickname below to enter.",
  fix_nickname_taken_by_staff:
    "Your nickname is the name of this lecture's instructor or moderator. Change your nickname below to enter.",
  fix_banned:
    "An instructor or moderator removed you from this lecture, so you cannot enter it again. If you think this is a mistake, contact the support of the portal where you bought the lecture.",
  fix_doors_not_open: "The doors open one hour before the start.",
  fix_lecture_ended: "The lecture has ended. Please wait for the archive.",
  fix_lecture_cancelled: "The lecture was cancelled. See the portal's notice about refunds.",
  fix_generic: "Please try again in a moment.",

  profile_title: "Nickname",
  profile_help: "The name shown on your seat and in the chat (1 to 40 characters).",
  profile_missing: "You have no nickname yet. You cannot enter until you set one.",
  profile_save: "Save",
  profile_saved: "Saved.",
  profile_failed: "Could not save: {message}",

  room_video: "Instructor's video",
  video_waiting: "Please wait for the lecture to start",
  video_waiting_start: "Starts at {time}",
  video_scheduled: "The doors are not open yet",
  video_live: "Live",
  video_live_pending: "The video appears here once the instructor starts broadcasting.",
  video_ended: "The lecture has ended",
  video_cancelled: "The lecture was cancelled",
  status_connecting: "Connecting…",
  status_connected: "Connected",
  status_reconnecting: "Connection lost. Reconnecting… (in {seconds} s)",
  status_reconnecting_now: "Reconnecting…",
  status_degraded: "The servers lost touch with each other for a moment. What you do takes effect once they are back.",
  status_closed: "You left the room",
  present: "{count} people here",
  leave: "Leave",
  leave_confirm: "Leave the room?",

  seats_title: "Seats",
  seats_grid_label: "Seat grid (arrow keys to move, Enter to sit)",
  seats_grid_label_staff: "Seat grid (arrow keys to move, Enter to call on)",
  seat_name: "Row {row}, seat {col}",
  seat_empty: "empty",
  seat_yours: "your seat",
  seat_away: "{nickname} (away)",
  seat_taken: "taken",
  seat_taken_away: "taken (away)",
  seat_held_for: "{nickname}",
  your_seat: "Your seat: {seat}",
  no_seat: "Click an empty seat to sit down.",
  stand_up: "Stand up",
  zoom_in: "Zoom in",
  zoom_out: "Zoom out",

  chat_title: "Chat",
  chat_log_label: "Chat messages",
  chat_input: "Message",
  chat_question: "Send as a question",
  chat_send: "Send",
  chat_unsent: "Sending…",
  chat_deleted: "(This message was deleted)",
  chat_badge_question: "Question",
  chat_badge_answered: "Answered",
  chat_badge_call_answer: "Answer to a call",
  chat_badge_instructor: "Instructor",
  chat_badge_moderator: "Moderator",
  chat_new_messages: "{count} new messages ↓",
  chat_new_messages_label: "Jump to {count} new messages",
  chat_list_help: "Move between messages with the up and down arrow keys; Enter opens a message's menu.",
  chat_line_actions: "Actions for {nickname}'s message",
  chat_announce_summary: "{count} new messages",
  chat_announce_summary_questions: "{count} new messages ({questions} questions)",
  chat_announce_question: "Question from {nickname}: {text}",
  chat_announce_call_answer: "{nickname} answered the call: {text}",
  chat_announce_line: "{nickname}: {text}",
  chat_muted: "You are muted until {time}.",
  chat_too_long: "Use at most {max} characters.",
  chat_empty: "No messages yet.",

  media_title: "Broadcast",
  media_start: "Start camera and microphone",
  media_share: "Share the screen",
  media_unshare: "Stop sharing",
  media_stop: "Stop broadcasting",
  media_preview: "Your camera, as sent",
  media_camera: "The instructor's video",
  media_screen: "Shared screen",
  media_error: "Could not use the camera or microphone: {message}",
  media_help: "Learners receive the video once the lecture is live. Before that, check how you look here.",
  media_play: "Play video and sound",
    announcement: "Announcement",
  called_on_you: "You are called on ({by}). Please answer in the chat.",
  called_on_other: "{nickname} is called on",
  dismiss: "Dismiss",
  sound_blocked: "(Your browser kept the chime silent. Click the page once and it will sound next time.)",

  emotions_title: "Reactions",
  emotion_press: "Send {label}",
  bursts_label: "Everyone's reactions",

  console_title: "Instructor console",
  console_start: "Start the lecture",
  console_end: "End the lecture",
  console_end_confirm: "End the lecture? Everyone leaves the room.",
  console_phase: "State: {phase}",
  phase_scheduled: "Doors not open",
  phase_doors_open: "Doors open (not started)",
  phase_live: "Live",
  phase_ended: "Ended",
  phase_cancelled: "Cancelled",
  console_announce: "Pin announcement",
  console_announce_input: "Announcement",
  console_announce_clear: "Unpin",
  console_call: "Call on",
  console_call_input: "Call on by nickname",
  console_call_button: "Call on",
  console_call_clear: "End the call",
  console_call_answered: "answered",
  console_call_waiting: "waiting for an answer",
  console_selected: "Selected seat: {seat}",
  console_select_hint: "Click a seat to call on the learner sitting there.",
  console_meter: "Emotion meter",
  console_meter_chart: "Reactions over the last {minutes} minutes (per 5 s)",
  console_meter_totals: "Total",
  console_meter_window: "Last minute",
  console_questions: "Questions",
  console_questions_empty: "No open questions.",
  console_mark_answered: "Mark answered",
  console_delete: "Delete",
  console_mute: "Mute…",
  console_mute_title: "Mute {nickname} for",
  console_mute_minutes: "{minutes} min",
  console_mute_until_end: "Until the lecture ends",
  console_call_this: "Call on this learner",
  console_remove: "Remove…",
  console_remove_confirm: "Remove {nickname} from the room?",
  console_remove_may_return: "Remove (may return)",
  console_remove_no_return: "Remove (may not return)",
  console_menu_back: "Back",

  closed_4103: "You were removed from the room by the instructor.",
  closed_4104: "You can no longer enter this lecture.",
  closed_4105: "The lecture has ended. Thank you for joining.",
  closed_4106: "The lecture was cancelled.",
  closed_4111: "The doors are not open yet.",
  closed_4112: "You entered this lecture in another window or tab, so this one was closed.",
  closed_4113: "Your entitlement to this lecture was withdrawn.",
  closed_generic: "The connection could not continue (code {code}).",
  closed_left: "You left the room.",
  enter_again: "Enter again",

  error_rate_limited: "Too many actions. Please wait a moment.",
  error_network: "Cannot reach the server. Check your network.",
  error_signed_out: "Your sign-in has expired. Please sign in again.",
  error_generic: "That did not work: {message}",

  check_title: "Connection check",
  check_intro: "Check your browser and connection before joining a lecture.",
  check_run: "Check again",
  check_running: "Checking…",
  check_pass: "OK",
  check_fail: "Action needed",
  check_warn: "Warning",
  check_na: "—",
  check_browser: "Browser support",
  check_browser_ok: "WebSocket and WebRTC are supported.",
  check_browser_fail:
    "This browser lacks features the lecture needs. Use a recent Chrome, Edge, Safari or Firefox.",
  check_codecs: "Video and audio formats: {codecs}",
  check_rtt: "Round trip to the server",
  check_rtt_value: "{ms} ms (median)",
  check_rtt_fail:
    "Could not reach the server. Check that your company network or security software does not block WebSockets.",
  check_rtt_slow: "The server answers slowly; chat and reactions may lag.",
  check_download: "Download speed",
  check_download_value: "{mbps} Mbps (needs 1 Mbps)",
  check_download_fail:
    "Below 1 Mbps: the video may stall. Move closer to your Wi-Fi router or use a wired connection.",
  check_download_error: "Could not measure the speed. Check your connection.",
  check_webrtc: "Video reception (WebRTC)",
  check_webrtc_value: "Connected to the server ({ms} ms)",
  check_webrtc_fail:
    "The video connection (WebRTC) could not be made. Your network may block UDP: ask your network administrator, or try another connection.",
  check_webrtc_busy: "The server is busy with other checks, so the video connection could not be tested. Try again in a minute.",
};

export const dictionaries: Record<Lang, Record<Key, string>> = { ja, en };

const STORAGE_KEY = "lecture.lang";

let current: Lang = initialLang();
const listeners = new Set<() => void>();

function initialLang(): Lang {
  try {
    const saved = globalThis.localStorage?.getItem(STORAGE_KEY);
    if (saved === "ja" || saved === "en") return saved;
  } catch {
    // Storage may be unavailable (private mode); Japanese is the default.
  }
  return "ja";
}

export function lang(): Lang {
  return current;
}

export function setLang(next: Lang): void {
  current = next;
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, next);
  } catch {
    // Not remembered, still switched.
  }
  if (typeof document !== "undefined") document.documentElement.lang = next;
  for (const l of listeners) l();
}

export function onLangChange(f: () => void): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}

/** The text for `key` in the current language, with `{name}` placeholders filled. */
export function t(key: Key, params: Record<string, string | number> = {}, l: Lang = current): string {
  const text = dictionaries[l][key];
  return text.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole,
  );
}

// Formatters are made once per language: making one costs far more than formatting with it,
// and a busy chat formats a time for every line it draws.
const dateTimeFormats: Partial<Record<Lang, Intl.DateTimeFormat>> = {};
const timeFormats: Partial<Record<Lang, Intl.DateTimeFormat>> = {};

/** Date and time in the reader's language. */
export function formatDateTime(ms: number, l: Lang = current): string {
  dateTimeFormats[l] ??= new Intl.DateTimeFormat(l === "ja" ? "ja-JP" : "en-GB", {
    year: "numeric",
    month: l === "ja" ? "numeric" : "short",
    day: "numeric",
    weekday: "short",
    hour: "2-digit",
    minute: "2-digit",
  });
  return dateTimeFormats[l].format(ms);
}

export function formatTime(ms: number, l: Lang = current): string {
  timeFormats[l] ??= new Intl.DateTimeFormat(l === "ja" ? "ja-JP" : "en-GB", {
    hour: "2-digit",
    minute: "2-digit",
  });
  return timeFormats[l].format(ms);
}
