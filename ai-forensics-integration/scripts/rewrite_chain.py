"""What a root attacker with the store file does: alter one record, then
recompute every batch digest and the session's final digest, so that the
store's own hash chain checks out again. Used by the report tests to show
that only anchors kept elsewhere catch it.

python3 rewrite_chain.py STORE.db SEQ OLD NEW
"""
import hashlib
import sqlite3
import struct
import sys

db, seq, old, new = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
c = sqlite3.connect(db)
sid = c.execute("SELECT max(id) FROM sessions").fetchone()[0]
rec = c.execute("SELECT record FROM events WHERE session_id = ? AND seq = ?", (sid, seq)).fetchone()[0]
assert old in rec, rec
c.execute("UPDATE events SET record = ? WHERE session_id = ? AND seq = ?", (rec.replace(old, new), sid, seq))
prev = bytes(32)
batches = c.execute(
    "SELECT batch, first_seq, last_seq, count, gap_before FROM batches WHERE session_id = ? ORDER BY batch", (sid,)
).fetchall()
for batch, first, last, count, gap in batches:
    h = hashlib.sha256()
    h.update(b"ai-forensics/batch/v1")
    h.update(prev)
    for v in (batch, first, last, count, gap):
        h.update(struct.pack("<Q", v))
    for s, r in c.execute(
        "SELECT seq, record FROM events WHERE session_id = ? AND batch = ? ORDER BY id", (sid, batch)
    ):
        b = r.encode()
        h.update(struct.pack("<Q", s))
        h.update(struct.pack("<Q", len(b)))
        h.update(b)
    d = h.digest()
    c.execute(
        "UPDATE batches SET prev_digest = ?, digest = ? WHERE session_id = ? AND batch = ?",
        (prev.hex(), d.hex(), sid, batch),
    )
    prev = d
c.execute("UPDATE sessions SET final_digest = ? WHERE id = ?", (prev.hex(), sid))
c.commit()
