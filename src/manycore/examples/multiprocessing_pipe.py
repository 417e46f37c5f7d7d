# Unit section: Python's multiprocessing Module > 3. Synchronization and Shared State > Using Pipe
# Shows: two processes connected by a multiprocessing.Pipe: one sends a message, the other
#   receives and prints it.
# Corrected: the processes are started under `if __name__ == "__main__":` (docs/seed-errata.md,
#   E1) and the exit codes are checked. The receiver waits with a timeout (conn.poll): in the
#   unit's version, if the sender dies before sending, recv() blocks forever, because the parent
#   and the receiver itself still hold open copies of the sending end, so no end-of-file ever
#   arrives (E3).
from __future__ import annotations

import sys
from multiprocessing import Pipe, Process
from multiprocessing.connection import Connection

RECEIVE_TIMEOUT_S = 10.0


# Function to send data through the pipe
def sender(conn: Connection) -> None:
    conn.send("Hello from sender!")
    conn.close()


# Function to receive data through the pipe
def receiver(conn: Connection) -> None:
    if not conn.poll(RECEIVE_TIMEOUT_S):
        raise SystemExit(f"receiver: nothing arrived within {RECEIVE_TIMEOUT_S} s")
    message = conn.recv()
    print(f"Received: {message}", flush=True)


def main(small: bool = False) -> None:
    # Create a pipe (two-way by default: each end can send and receive)
    parent_conn, child_conn = Pipe()

    # Create and start sender and receiver processes
    sender_process = Process(target=sender, args=(parent_conn,))
    receiver_process = Process(target=receiver, args=(child_conn,))
    sender_process.start()
    receiver_process.start()

    # Wait for both processes to complete
    sender_process.join()
    receiver_process.join()
    codes = (sender_process.exitcode, receiver_process.exitcode)
    if codes != (0, 0):
        raise SystemExit(f"a process failed: exit codes {codes}")
    print("Both processes finished.")


if __name__ == "__main__":
    main(small="--small" in sys.argv[1:])
