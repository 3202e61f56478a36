package procfs

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// A /proc/PID/stat line of Linux 6.1 (52 fields), with a command name
// holding a space and a ')'.
const statLine = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 1229 0 0 0 250 130 7 3 20 0 1 0 987654 18509824 1030 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"

func TestParseStat(t *testing.T) {
	st, err := parseStat(statLine)
	if err != nil {
		t.Fatal(err)
	}
	want := Stat{Comm: "my (odd) prog", State: 'S', PPID: 1, UTime: 250, STime: 130, CUTime: 7, CSTime: 3, StartTime: 987654}
	if st != want {
		t.Fatalf("%+v, want %+v", st, want)
	}
	if st.CPU() != 3800*time.Millisecond || st.ChildrenCPU() != 100*time.Millisecond {
		t.Errorf("CPU %s, children %s", st.CPU(), st.ChildrenCPU())
	}
	for _, c := range []struct{ line, want string }{
		{"", "no command name"},
		{"12 prog S 1", "no command name"},
		{"12 (prog)", "no command name"},
		{"12 (prog) S 1 2 3", "too few fields"},
		{strings.Replace(statLine, ") S 1 ", ") S x ", 1), "bad ppid"},
		{strings.Replace(statLine, " 250 130 ", " 250 -1 ", 1), "bad CPU time"},
		{strings.Replace(statLine, " 987654 ", " soon ", 1), "bad start time"},
	} {
		if _, err := parseStat(c.line); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.line, err, c.want)
		}
	}
}

func TestMachineCPUAndCPUModel(t *testing.T) {
	stat := "cpu  100 20 30 9999 5 0 1 0 0 0\ncpu0 50 10 15 5000 2 0 0 0 0 0\n"
	if got := machineCPU(stat); got != 1500*time.Millisecond {
		t.Errorf("machineCPU = %s, want 1.5s", got)
	}
	if got := machineCPU("intr 1 2 3\n"); got != 0 {
		t.Errorf("machineCPU of a line that is not cpu = %s", got)
	}
	info := "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\nprocessor\t: 1\nmodel name\t: other\n"
	if got := cpuModel(info); got != "Intel(R) Xeon(R) CPU @ 2.20GHz" {
		t.Errorf("cpuModel = %q", got)
	}
	if got := cpuModel("processor\t: 0\n"); got != "" {
		t.Errorf("cpuModel without a model name = %q", got)
	}
}

// TestSelf reads this test process's own entries from the real /proc.
func TestSelf(t *testing.T) {
	pid := os.Getpid()
	st, err := ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != os.Getppid() || st.Comm == "" || st.State != 'R' && st.State != 'S' || st.StartTime == 0 {
		t.Errorf("own stat: %+v (ppid %d)", st, os.Getppid())
	}
	if got := StartTime(pid); got != st.StartTime {
		t.Errorf("StartTime = %d, want %d", got, st.StartTime)
	}
	if got := StartTime(-1); got != 0 {
		t.Errorf("StartTime of no process = %d", got)
	}
	if kb, err := StatusKB(pid, "VmHWM"); err != nil || kb == 0 {
		t.Errorf("VmHWM: %d %v", kb, err)
	}
	if v, err := StatusField(pid, "VmRSS"); err != nil || !strings.HasSuffix(v, " kB") {
		t.Errorf("VmRSS: %q %v", v, err)
	}
	if _, err := StatusField(pid, "NoSuchField"); err == nil || !strings.Contains(err.Error(), "no NoSuchField") {
		t.Errorf("a missing field: %v", err)
	}
	args, err := Cmdline(pid)
	if err != nil || len(args) != len(os.Args) || args[len(args)-1] != os.Args[len(os.Args)-1] {
		t.Errorf("Cmdline = %q, %v; want %q", args, err, os.Args)
	}
	pids, err := PIDs()
	if err != nil || !slices.Contains(pids, pid) {
		t.Errorf("PIDs lacks %d: %v", pid, err)
	}
	if MachineCPU() <= 0 || KernelRelease() == "" || BootID() == "" || !strings.HasPrefix(PIDNamespace(), "pid:[") {
		t.Errorf("machine CPU %s, kernel %q, boot id %q, pid namespace %q", MachineCPU(), KernelRelease(), BootID(), PIDNamespace())
	}
}
