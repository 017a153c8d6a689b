/* The POSIX sh programs the ssh backend sends to a remote host (ssh.c). They are plain text so
 * that the remote side needs nothing of sluice: a POSIX sh, setsid (util-linux), and the usual
 * wc, tail, head, date, mkdir, mv, sleep (fractional seconds as in coreutils and busybox).
 *
 * Files of one try, in the folder $D (remote_dir/KEY, 0700):
 *   job     the command: its environment, limits, folder and argv (read, then removed)
 *   sup     the supervisor (SSH_SUPERVISOR below)
 *   run     a folder made by whoever claims the try: the supervisor, or a watcher or a kill
 *           that found the try never started (mkdir is the atomic test-and-set)
 *   pid     "<pid> <starttime>" of the supervisor (starttime: field 22 of /proc/PID/stat, 0
 *           where there is no /proc)
 *   cpid    the command's pid, which is also its session and process group id
 *   log     the command's stdout and stderr, and the supervisor's notes
 *   out     $SLUICE_OUTPUT
 *   status  written atomically (tmp + mv) when it is over: kind=, code=, start_us=, end_us=,
 *           message= (the local supervisor's format, exec_read_status())
 *   gone    the try was given up before it started: a late launch must not run it
 */
#ifndef SLUICE_SSH_SCRIPTS_H
#define SLUICE_SSH_SCRIPTS_H

/* Shell functions both the supervisor and the watcher use. */
#define SSH_FUNCTIONS \
	"st() { [ -r /proc/$1/stat ] || { echo 0; return; }; read -r l < /proc/$1/stat || { echo 0; return; }\n" \
	"  l=${l##*) }; set -- $l; shift 19; echo \"$1\"; }\n" \
	"now_us() { t=$(date +%s%N 2>/dev/null); case $t in *[!0-9]*|'') echo $(( $(date +%s) * 1000000 ));;\n" \
	"  *) echo $(( t / 1000 ));; esac; }\n" \
	"status() { { printf 'kind=%s\\ncode=%s\\nstart_us=%s\\nend_us=%s\\n' \"$1\" \"$2\" \"${S0:-0}\" \"$(now_us)\"\n" \
	"  [ -z \"$3\" ] || printf 'message=%s\\n' \"$3\"; } > status.tmp && mv status.tmp status; }\n"

/* The supervisor: sh sup DIR TIMEOUT GRACE TIMEOUT_TEXT (seconds; TIMEOUT 0 = none). It runs
 * the job in a session of its own (so its process group is the job's pid), forwards SIGTERM and
 * SIGINT (a cancel) and the timeout to that group as SIGTERM, then SIGKILL after the grace, kills
 * what the job left in its group, and writes the status. */
#define SSH_SUPERVISOR \
	"cd \"$1\" || exit 1\n" \
	"mkdir run 2>/dev/null || exit 0\n" \
	SSH_FUNCTIONS \
	"echo \"$$ $(st $$)\" > pid.tmp && mv pid.tmp pid\n" \
	"S0=$(now_us); killing=; timedout=; c=; w=\n" \
	"note() { printf 'sluice: %s\\n' \"$1\" >> log; }\n" \
	"term() { [ -z \"$killing\" ] || return 0; killing=1; note \"$1; sending SIGTERM to process group\"\n" \
	"  kill -TERM -\"$c\" 2>/dev/null; kill -TERM \"$c\" 2>/dev/null; (sleep \"$3\"; kill -USR2 $$ 2>/dev/null) & }\n" \
	"trap 'timedout=1; term \"execution_timeout of $4 exceeded\"' USR1\n" \
	"trap 'term \"supervisor received SIGTERM\"' TERM\n" \
	"trap 'term \"supervisor received SIGINT\"' INT\n" \
	"trap '' HUP PIPE\n" \
	"trap 'note \"process group still running ${3}s after SIGTERM; sending SIGKILL\"; kill -KILL -\"$c\" 2>/dev/null' USR2\n" \
	"setsid sh ./job </dev/null >>log 2>&1 &\n" \
	"c=$!\n" \
	"echo \"$c\" > cpid\n" \
	"[ \"$2\" = 0 ] || { (sleep \"$2\"; kill -USR1 $$ 2>/dev/null) & w=$!; }\n" \
	"while :; do wait \"$c\"; rc=$?; kill -0 \"$c\" 2>/dev/null || break; done\n" \
	"kill -KILL -\"$c\" 2>/dev/null\n" \
	"i=0; while kill -0 -\"$c\" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done\n" \
	"if [ -n \"$timedout\" ]; then k=timeout; [ $rc -le 128 ] || rc=$((rc - 128))\n" \
	"elif [ $rc -gt 128 ]; then k=signaled; rc=$((rc - 128)); else k=exited; fi\n" \
	"status \"$k\" \"$rc\"\n" \
	"trap '' TERM; kill -TERM -$$ 2>/dev/null\n" \
	"exit 0\n"

/* The watcher, after the variables D, OFF (bytes of the log the daemon has) and the launch part.
 * It streams on stdout, framed: "L n\n" + n bytes of the log, "O n\n" + the output file,
 * "S n\n" + the status file (the last frame), or "G\n" when the try was given up before it
 * started. A supervisor that died without a status is reported as lost, its group killed. */
#define SSH_WATCHER \
	"cd \"$D\" 2>/dev/null || { echo \"sluice: cannot enter $D\" >&2; exit 3; }\n" \
	"[ ! -f gone ] || { echo G; exit 0; }\n" \
	"alive() { kill -0 \"$1\" 2>/dev/null || return 1; [ \"$2\" = 0 ] || [ \"$(st \"$1\")\" = \"$2\" ]; }\n" \
	"lost() { [ ! -f cpid ] || kill -KILL -\"$(cat cpid)\" 2>/dev/null; status lost -1 \"$1\"; }\n" \
	"dl=0.01; n=0\n" \
	"while :; do\n" \
	"  fin=; [ ! -f status ] || fin=1\n" \
	"  if [ -f log ]; then sz=$(($(wc -c < log))); if [ $sz -gt $OFF ]; then\n" \
	"    printf 'L %s\\n' $((sz - OFF)); tail -c +$((OFF + 1)) log | head -c $((sz - OFF)) || exit 4; OFF=$sz; fi; fi\n" \
	"  if [ -n \"$fin\" ]; then\n" \
	"    if [ -f out ]; then o=$(($(wc -c < out))); printf 'O %s\\n' $o; head -c $o out; fi\n" \
	"    printf 'S %s\\n' $(($(wc -c < status))); cat status; exit 0; fi\n" \
	"  if [ -f pid ]; then read -r p s < pid\n" \
	"    alive \"$p\" \"$s\" || { [ -f status ] || lost \"the remote supervisor (pid $p) ended without writing a status\"; continue; }\n" \
	"  elif [ $n -ge 300 ] && mkdir run 2>/dev/null; then : > gone; echo G; exit 0; fi\n" \
	"  n=$((n + 1)); sleep $dl\n" \
	"  case $dl in 0.01) dl=0.02;; 0.02) dl=0.05;; 0.05) dl=0.1;; 0.1) dl=0.2;; esac\n" \
	"done\n"

/* Re-attaching (after a restart or a lost connection): a try whose folder does not exist never
 * started; the folder is made with a tombstone so that a launch still on its way cannot start
 * it any more. */
#define SSH_REATTACH \
	"mkdir -p \"$R\" 2>/dev/null\n" \
	"if mkdir \"$D\" 2>/dev/null; then : > \"$D/gone\"; echo G; exit 0; fi\n"

/* A cancel: after D. A try that has not started yet is claimed and ends as signaled 15. */
#define SSH_KILL \
	SSH_FUNCTIONS \
	"mkdir -p \"$D\" 2>/dev/null; cd \"$D\" || exit 3\n" \
	"if mkdir run 2>/dev/null; then status signaled 15 'cancelled before it started'; exit 0; fi\n" \
	"[ ! -f status ] || exit 0\n" \
	"i=0; while [ ! -f pid ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done\n" \
	"read -r p s < pid && kill -TERM \"$p\"\n"

#endif
