package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of the CPU times in /proc/PID/stat: USER_HZ, which
// is 100 on every Linux architecture Go runs on.
const clockTick = 10 * time.Millisecond

// usage is the CPU a server process has used so far, all its threads
// together.
type usage struct {
	user, sys time.Duration
	faults    int64 // minor page faults
}

// usage reads the process's CPU use, or reports false where /proc does not
// give it (outside Linux).
func (s *server) usage() (usage, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return usage{}, false
	}
	u, err := parseStat(string(b))
	return u, err == nil
}

// parseStat reads minflt, utime and stime (fields 10, 14 and 15) from a
// /proc/PID/stat line. The command name, field 2, is in parentheses and may
// hold spaces, so fields are counted from its closing parenthesis.
func parseStat(line string) (usage, error) {
	end := strings.LastIndexByte(line, ')')
	if end < 0 {
		return usage{}, fmt.Errorf("no command name in %q", line)
	}
	f := strings.Fields(line[end+1:]) // f[0] is field 3
	if len(f) < 13 {
		return usage{}, fmt.Errorf("short stat line %q", line)
	}
	var n [3]int64
	for i, field := range []int{10, 14, 15} {
		v, err := strconv.ParseInt(f[field-3], 10, 64)
		if err != nil {
			return usage{}, fmt.Errorf("field %d of %q: %w", field, line, err)
		}
		n[i] = v
	}
	return usage{faults: n[0], user: time.Duration(n[1]) * clockTick,
		sys: time.Duration(n[2]) * clockTick}, nil
}

// sub returns the use between an earlier reading and u.
func (u usage) sub(before usage) usage {
	return usage{user: u.user - before.user, sys: u.sys - before.sys,
		faults: u.faults - before.faults}
}

// add returns the sum of two uses.
func (u usage) add(o usage) usage {
	return usage{user: u.user + o.user, sys: u.sys + o.sys, faults: u.faults + o.faults}
}

// perRequest describes u spread over n requests in elapsed time, with the
// share of elapsed time the process was on a CPU, or "" if unmeasured.
func (u usage) perRequest(n int, elapsed time.Duration) string {
	cpu := u.user + u.sys
	if n == 0 || cpu == 0 || elapsed <= 0 {
		return ""
	}
	return fmt.Sprintf("%.0f µs, busy %.0f %% (%.0f %% system), %.1f faults",
		float64(cpu.Microseconds())/float64(n), 100*float64(cpu)/float64(elapsed),
		100*float64(u.sys)/float64(cpu), float64(u.faults)/float64(n))
}
