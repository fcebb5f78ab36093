// Generated from protocol/src/close.rs: the room's WebSocket close codes.
// 4000-4099: reconnect and resume. 4100-4199: terminal, show the reason.
export const CloseCodes = {
  ServerShutdown: 4000,
  SlowConsumer: 4001,
  HeartbeatTimeout: 4002,
  ResyncRequired: 4003,
  TicketInvalid: 4100,
  TicketExpired: 4101,
  TicketWrongLecture: 4102,
  Removed: 4103,
  Banned: 4104,
  LectureEnded: 4105,
  LectureCancelled: 4106,
  ProtocolViolation: 4107,
  MessageTooBig: 4108,
  HelloTimeout: 4109,
  Flooding: 4110,
  DoorsNotOpen: 4111,
  Replaced: 4112,
  Revoked: 4113,
} as const;
