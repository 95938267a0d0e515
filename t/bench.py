#!/usr/bin/python3
"""bench.py - run a command N times, print the median wall time.

usage: bench.py NAME N STDIN-FILE|- -- COMMAND ARGS...
Prints "NAME: median X ms (min Y, p90 Z, n N)" and, on the last line of
stdout, the median in microseconds alone (for the caller's ratios).
"""
import statistics
import subprocess
import sys
import time


def main():
    name, n, infile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    data = b"" if infile == "-" else open(infile, "rb").read()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, input=data, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        times.append(time.perf_counter() - t0)
        if p.returncode != 0:
            sys.stderr.write("%s: exit %d: %s\n" % (name, p.returncode,
                                                      p.stderr.decode()))
            sys.exit(1)
    times.sort()
    med = statistics.median(times)
    p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
    print("%-34s median %7.3f ms  (min %.3f, p90 %.3f, n %d)"
          % (name + ":", med * 1e3, times[0] * 1e3, p90 * 1e3, n))
    print(int(med * 1e6))


main()
