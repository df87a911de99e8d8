"""Compare two lcnn builds on W7 with their epochs interleaved.

    python3 bench/ab/compare.py LIB_A LIB_B [ROUNDS]

LIB_A and LIB_B are R libraries with lcnn installed (R CMD INSTALL -l DIR).
One R process per build (epoch_server.R) builds and warms up the demo model;
then each round asks both for one epoch, alternating which goes first.
A slow spell of the machine then falls on both builds of a round, and the
per-round ratio B / A cancels most of it: on a shared host whose speed
swings by a third within minutes, blocks of calls per build cannot resolve a
few percent, and this can. Prints each build's epoch times and the median
and quartiles of B / A.
"""
import os
import statistics
import subprocess
import sys

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "epoch_server.R")


def start(library):
    env = dict(os.environ, R_LIBS=library)
    server = subprocess.Popen(["Rscript", SERVER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env, text=True)
    if server.stdout.readline().strip() != "ready":
        sys.exit(f"{SERVER} did not start with R_LIBS={library}")
    return server


def epoch(server):
    server.stdin.write("go\n")
    server.stdin.flush()
    return float(server.stdout.readline())


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    libraries = sys.argv[1:3]
    rounds = int(sys.argv[3]) if len(sys.argv) == 4 else 20
    servers = [start(library) for library in libraries]
    times = [[], []]
    for r in range(rounds):
        for side in ((0, 1) if r % 2 == 0 else (1, 0)):
            times[side].append(epoch(servers[side]))
    for server in servers:
        server.stdin.write("stop\n")
        server.stdin.close()
        server.wait()
    for library, seconds in zip(libraries, times):
        print(f"{library}: median {statistics.median(seconds):.3f} s  "
              f"[{' '.join(f'{s:.2f}' for s in seconds)}]")
    ratios = [b / a for a, b in zip(*times)]
    low, _, high = statistics.quantiles(ratios, n=4)
    print(f"B / A per round: median {statistics.median(ratios):.3f}, "
          f"quartiles {low:.3f}-{high:.3f} ({rounds} rounds)")


if __name__ == "__main__":
    main()
