import type { ConnectionInfo, MemberInfo, RoomId, RoomSnapshot, UserId, ConnId } from 'realtime-message-protocol';

/** Builds a snapshot with connections sorted by connId and members grouped by user. */
export function buildSnapshot(roomId: RoomId, seq: number, connections: ConnectionInfo[]): RoomSnapshot {
  connections.sort((a, b) => (a.connId < b.connId ? -1 : a.connId > b.connId ? 1 : 0));
  const byUser = new Map<UserId, ConnId[]>();
  for (const c of connections) {
    const list = byUser.get(c.userId);
    if (list) list.push(c.connId);
    else byUser.set(c.userId, [c.connId]);
  }
  const members: MemberInfo[] = [...byUser.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([userId, connIds]) => ({ userId, connIds }));
  return { roomId, seq, members, connections };
}
