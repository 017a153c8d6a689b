/* The POSIX sh program the ssh backend sends to a remote host (ssh.c): the agent, which also
 * holds each try's supervisor. It is plain text, so the remote side needs nothing of sluice: a
 * POSIX sh, setsid (util-linux), and mkdir, mv, rm, wc, tail, head, cat, date, sleep
 * (fractional seconds as in coreutils and busybox), mkfifo, uname. /proc is used where there is
 * one (process start times, a clock without a process per reading).
 *
 * Files of one try, in the folder remote_dir/KEY (0700):
 *   job     the command: its environment, limits, folder and argv (one line of sh)
 *   run     created exclusively (noclobber) by whoever claims the try: its supervisor, or a
 *           watch or a cancel that found the try never started. So it runs at most once.
 *   pid     "<pid> <starttime>" of the supervisor (starttime: field 22 of /proc/PID/stat, 0
 *           where there is no /proc)
 *   cpid    the command's pid, which is also its session and process group id
 *   log     the command's stdout and stderr, and the supervisor's notes
 *   out     $SLUICE_OUTPUT
 *   status  written atomically (tmp + mv) when it is over: kind=, code=, start_us=, end_us=,
 *           message= (the local supervisor's format, exec_read_status())
 *   gone    the try was given up before it started: a late start must not run it
 */
#ifndef SLUICE_SSH_SCRIPTS_H
#define SLUICE_SSH_SCRIPTS_H

/* Shell functions: st PID sets ST (the start time of PID); now_us sets NOW (wall clock, us:
 * /proc/uptime plus the offset clock_init measured, else date); status KIND CODE [MESSAGE]
 * writes ./status atomically; claim DIR creates DIR/run exclusively. */
#define SSH_FUNCTIONS \
	"st() { ST=0; [ -r /proc/$1/stat ] && read -r _l < /proc/$1/stat || return 0\n" \
	"  _l=${_l##*) }; set -- $_l; shift 19; ST=$1; }\n" \
	"up_us() { read -r _u _x < /proc/uptime 2>/dev/null || return 1; _s=${_u%.*}; _f=${_u#*.}; _f=${_f#0}\n" \
	"  UP=$(( _s * 1000000 + ${_f:-0} * 10000 )); }\n" \
	"date_us() { _t=$(date +%s%N 2>/dev/null); case $_t in *[!0-9]*|'') NOW=$(( $(date +%s) * 1000000 ));;\n" \
	"  *) NOW=$(( _t / 1000 ));; esac; }\n" \
	"clock_init() { BT=; date_us; ! up_us || BT=$(( NOW - UP )); }\n" \
	"now_us() { if [ -n \"$BT\" ] && up_us; then NOW=$(( BT + UP )); else date_us; fi; }\n" \
	"status() { now_us; { printf 'kind=%s\\ncode=%s\\nstart_us=%s\\nend_us=%s\\n' \"$1\" \"$2\" \"${S0:-0}\" \"$NOW\"\n" \
	"  [ -z \"$3\" ] || printf 'message=%s\\n' \"$3\"; } > status.tmp && mv status.tmp status; }\n" \
	"claim() { (set -C; : > \"$1/run\") 2>/dev/null; }\n"

/* The supervisor: sup DIR TIMEOUT GRACE TIMEOUT_TEXT (seconds; TIMEOUT 0 = none), run by the
 * agent's reader in a subshell of its own (a fork, no exec), detached from the agent's stdin,
 * stdout and pipe. Its claim is `: > run` under noclobber: when run exists, the redirection of a
 * special built-in fails and the (sub)shell exits. It runs the job in a session of its own (so its process group is the job's
 * pid), forwards SIGTERM and SIGINT (a cancel) and the timeout to that group as SIGTERM, then
 * SIGKILL after the grace, kills what the job left in its group, writes the status and tells the
 * agent ("D KEY" into its pipe $F, when that agent is still there). */
#define SSH_SUPERVISOR \
	"sup() { D=$1; TMO=$2; GR=$3; HUMAN=$4\n" \
	"  cd \"$D\" || exit 1\n" \
	"  set -C; : > run; set +C\n" \
	"  if read -r _l < /proc/self/stat 2>/dev/null; then SP=${_l%% *}; else SP=$(exec sh -c 'echo $PPID'); fi\n" \
	"  st \"$SP\"; echo \"$SP $ST\" > pid\n" \
	"  now_us; S0=$NOW; killing=; timedout=; c=; w=; g=\n" \
	"  note() { printf 'sluice: %s\\n' \"$1\" >> log; }\n" \
	"  term() { [ -z \"$killing\" ] || return 0; killing=1; note \"$1; sending SIGTERM to process group\"\n" \
	"    kill -TERM -\"$c\" 2>/dev/null; kill -TERM \"$c\" 2>/dev/null; (sleep \"$GR\"; kill -USR2 \"$SP\" 2>/dev/null) & g=$!; }\n" \
	"  trap 'timedout=1; term \"execution_timeout of $HUMAN exceeded\"' USR1\n" \
	"  trap 'term \"supervisor received SIGTERM\"' TERM\n" \
	"  trap 'term \"supervisor received SIGINT\"' INT\n" \
	"  trap '' HUP PIPE\n" \
	"  trap 'note \"process group still running ${GR}s after SIGTERM; sending SIGKILL\"; kill -KILL -\"$c\" 2>/dev/null' USR2\n" \
	"  setsid sh ./job </dev/null >>log 2>&1 &\n" \
	"  c=$!\n" \
	"  echo \"$c\" > cpid\n" \
	"  [ \"$TMO\" = 0 ] || { (sleep \"$TMO\"; kill -USR1 \"$SP\" 2>/dev/null) & w=$!; }\n" \
	"  while :; do wait \"$c\"; rc=$?; kill -0 \"$c\" 2>/dev/null || break; done\n" \
	"  kill -KILL -\"$c\" 2>/dev/null\n" \
	"  i=0; while kill -0 -\"$c\" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done\n" \
	"  if [ -n \"$timedout\" ]; then k=timeout; [ $rc -le 128 ] || rc=$((rc - 128))\n" \
	"  elif [ $rc -gt 128 ]; then k=signaled; rc=$((rc - 128)); else k=exited; fi\n" \
	"  trap '' TERM INT USR1 USR2\n" \
	"  [ -z \"$w\" ] || kill \"$w\" 2>/dev/null; [ -z \"$g\" ] || kill \"$g\" 2>/dev/null\n" \
	"  status \"$k\" \"$rc\"\n" \
	"  [ ! -p \"$F\" ] || printf 'D %s\\n' \"${D##*/}\" 1<>\"$F\" 2>/dev/null\n" \
	"  exit 0; }\n"

/* The agent: `sh -c AGENT sluice-agent REMOTE_DIR`, one long-lived session per host over its
 * ControlMaster. Two processes: the reader (a subshell) takes the daemon's requests from stdin,
 * starts tries (mkdir, the job file, a fork for the supervisor, so a try costs the remote side
 * mkdir, setsid, sh, the command and mv) and passes the rest on; the main shell, the reporter, is
 * the only one that writes stdout. Both, and the supervisors when a try ends, write one short
 * line each into the agent's pipe (a FIFO, remote_dir/.agent-HOSTNAME-PID: remote_dir may be shared
 * by several hosts), which the reporter reads: so
 * an ended try is reported at once, without polling. When the connection goes, both end (EOF,
 * SIGPIPE) and the supervisors go on; a new agent re-attaches.
 *
 * Requests (one line each on stdin; KEY is the try's folder name, 32 hex digits):
 *   S KEY TIMEOUT GRACE TIMEOUT_TEXT JOB   start: claim the folder (mkdir), write JOB (one line
 *                                          of sh) to its job file, start the supervisor; a
 *                                          folder that exists is only watched
 *   W KEY OFFSET                           watch a try started earlier (re-attach): one whose
 *                                          folder does not exist never started; it gets a
 *                                          tombstone and the answer G
 *   K KEY                                  cancel (SIGTERM to the supervisor, which forwards it to
 *                                          the group); a try not started yet is claimed and ends
 *                                          as signaled 15
 *   P                                      stream the new part of each running try's log, check
 *                                          that their supervisors live, report ended ones; "A"
 *   C KEY...                               remove finished tries' folders
 *   Q                                      end
 * Answers (stdout): "H" (ready), "A" (a P is done), "G KEY", "L KEY n" + n bytes of log,
 * "O KEY n" + n bytes of $SLUICE_OUTPUT, "S KEY" + the status file's lines + a line ".", and
 * "E text" (the agent cannot work, or a request it does not know). In three parts (ISO C's string
 * length limit), sent in this order: SSH_FUNCTIONS, SSH_SUPERVISOR, SSH_AGENT, SSH_AGENT_READER,
 * SSH_AGENT_LOOP. */
#define SSH_AGENT \
	"umask 077\n" \
	"R=$1\n" \
	"mkdir -p \"$R\" 2>/dev/null; cd \"$R\" 2>/dev/null || { echo \"E cannot create or enter the remote folder $R\"; exit 3; }\n" \
	"alive() { kill -0 \"$1\" 2>/dev/null || return 1; [ \"$2\" = 0 ] || { st \"$1\"; [ \"$ST\" = \"$2\" ]; }; }\n" \
	"lost() { [ ! -f cpid ] || kill -KILL -\"$(cat cpid)\" 2>/dev/null; status lost -1 \"$1\"; }\n" \
	"W=\n" \
	"add() { case \" $W \" in *\" $1 \"*) ;; *) W=\"$W $1\"; eval \"o_$1=\\$2; c_$1=0\";; esac; }\n" \
	"drop() { nw=; for x in $W; do [ \"$x\" = \"$1\" ] || nw=\"$nw $x\"; done; W=$nw; unset o_$1 c_$1; }\n" \
	"flush() { eval \"o=\\$o_$1\"; [ -s \"$1/log\" ] || return 0; sz=$(wc -c < \"$1/log\"); sz=$((sz))\n" \
	"  [ \"$sz\" -gt \"$o\" ] || return 0\n" \
	"  printf 'L %s %s\\n' \"$1\" $((sz - o)); tail -c +$((o + 1)) \"$1/log\" | head -c $((sz - o)); eval \"o_$1=$sz\"; }\n" \
	"report() { flush \"$1\"\n" \
	"  if [ -f \"$1/out\" ]; then n=$(wc -c < \"$1/out\"); n=$((n)); printf 'O %s %s\\n' \"$1\" $n; head -c $n \"$1/out\"; fi\n" \
	"  printf 'S %s\\n' \"$1\"; while IFS= read -r l; do printf '%s\\n' \"$l\"; done < \"$1/status\"; echo .; }\n" \
	"scan() { nw=\n" \
	"  for k in $W; do\n" \
	"    if [ -f \"$k/status\" ]; then report $k; unset o_$k c_$k; continue; fi\n" \
	"    flush $k\n" \
	"    if [ -s \"$k/pid\" ]; then\n" \
	"      if read -r p s < \"$k/pid\" && ! alive \"$p\" \"$s\" && [ ! -f \"$k/status\" ]; then\n" \
	"        (cd \"$k\" && lost \"the remote supervisor (pid $p) ended without writing a status\")\n" \
	"        [ ! -f \"$k/status\" ] || { report $k; unset o_$k c_$k; continue; }; fi\n" \
	"    else eval \"c=\\$c_$k\"; c=$((c + 1)); eval \"c_$k=$c\"\n" \
	"      if [ $c -ge 60 ] && claim \"$k\"; then : > \"$k/gone\"; printf 'G %s\\n' $k; unset o_$k c_$k; continue; fi\n" \
	"    fi\n" \
	"    nw=\"$nw $k\"\n" \
	"  done; W=$nw; }\n" \
	"F=\"$R/.agent-$(uname -n 2>/dev/null)-$$\"\n" \
	"rm -f \"$F\"; mkfifo -m 600 \"$F\" 2>/dev/null && exec 3<>\"$F\" || { echo \"E cannot make the pipe $F (mkfifo)\"; exit 3; }\n" \
	"trap 'rm -f \"$F\"' EXIT\n" \
	"trap 'exit 0' TERM HUP\n" \
	"SS=; ! command -v setsid >/dev/null 2>&1 || SS=1\n" \
	"clock_init\n"

/* The reader (see SSH_AGENT). */
#define SSH_AGENT_READER \
	"reader() {\n" \
	"  while read -r op k a b c rest; do\n" \
	"    case $op in\n" \
	"    S) printf 'A %s\\n' \"$k\" >&3\n" \
	"       if mkdir \"$k\" 2>/dev/null; then printf '%s\\n' \"$rest\" > \"$k/job\"\n" \
	"         if [ -n \"$SS\" ]; then (sup \"$R/$k\" \"$a\" \"$b\" \"$c\" </dev/null >/dev/null 2>&1 3>&- &)\n" \
	"         else (cd \"$k\" && claim . && status exited 127 'setsid is not installed on this host'); printf 'D %s\\n' \"$k\" >&3; fi; fi;;\n" \
	"    W) if mkdir \"$k\" 2>/dev/null || [ -f \"$k/gone\" ]; then : > \"$k/gone\"; printf 'G %s\\n' \"$k\" >&3\n" \
	"       else printf 'W %s %s\\n' \"$k\" \"$a\" >&3; fi;;\n" \
	"    K) if mkdir -p \"$k\" 2>/dev/null && claim \"$k\"; then (cd \"$k\" && status signaled 15 'cancelled before it started')\n" \
	"         printf 'A %s\\nD %s\\n' \"$k\" \"$k\" >&3\n" \
	"       elif [ ! -f \"$k/status\" ]; then i=0\n" \
	"         while [ ! -s \"$k/pid\" ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done\n" \
	"         read -r p s < \"$k/pid\" 2>/dev/null && kill -TERM \"$p\" 2>/dev/null; fi;;\n" \
	"    P|Q) printf '%s\\n' \"$op\" >&3; [ \"$op\" = P ] || exit 0;;\n" \
	"    C) set -- $k $a $b $c $rest; [ $# = 0 ] || rm -rf -- \"$@\";;\n" \
	"    *) printf 'E unknown request %.20s\\n' \"$op\" >&3;;\n" \
	"    esac\n" \
	"  done\n" \
	"  echo Q >&3; }\n"

#define SSH_AGENT_LOOP \
	"exec 4<&0\n" \
	"(trap - EXIT TERM HUP; exec 0<&4 4<&-; reader) >/dev/null 2>&1 &\n" \
	"exec 0</dev/null 4<&-\n" \
	"echo H\n" \
	"while read -r op k a <&3; do\n" \
	"  case $op in\n" \
	"  A) add \"$k\" 0;;\n" \
	"  W) add \"$k\" \"$a\"; [ ! -f \"$k/status\" ] || { report \"$k\"; drop \"$k\"; };;\n" \
	"  D) case \" $W \" in *\" $k \"*) [ ! -f \"$k/status\" ] || { report \"$k\"; drop \"$k\"; };; esac;;\n" \
	"  G) printf 'G %s\\n' \"$k\";;\n" \
	"  P) scan; echo A;;\n" \
	"  E) printf 'E %s %s\\n' \"$k\" \"$a\";;\n" \
	"  Q) exit 0;;\n" \
	"  esac\n" \
	"done\n"

#endif
