#!/bin/sh
# free-port.sh [COUNT]: prints a TCP port P such that P .. P+COUNT-1 (default
# 1) have no socket on this machine (/proc/net/tcp and tcp6, any state), for
# the throwaway servers of the tests and benchmarks. The search starts at a
# random port in 16000..18999, below the kernel's ephemeral range and clear
# of the integration tests' own listeners (19100.., 20000..40001), so two
# runs started together rarely pick the same one.
set -eu
count=${1:-1}
awk -v count="$count" -v seed="$$" '
	function hex(s,   i, n) {
		n = 0
		for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789ABCDEF", toupper(substr(s, i, 1))) - 1
		return n
	}
	FNR > 1 { split($2, a, ":"); used[hex(a[2])] = 1 }
	END {
		srand(seed)
		start = 16000 + int(rand() * 3000)
		for (i = 0; i < 3000; i++) {
			p = 16000 + (start - 16000 + i) % 3000
			ok = 1
			for (k = 0; k < count; k++) if ((p + k) in used) ok = 0
			if (ok) { print p; exit 0 }
		}
		print "free-port.sh: no free port in 16000..18999" > "/dev/stderr"
		exit 1
	}' /proc/net/tcp /proc/net/tcp6
