#!/bin/sh
# The entrypoint of an integr8s executor container. Runs the command given as arguments from
# the writable work dir with a copy of the script, keeps stdout and stderr apart (files in the
# size-capped /tmp), then prints them framed on its own stdout:
#   STDOUT <bytes>\n<at most cap bytes>\nSTDERR <bytes>\n<at most cap bytes>
# and writes exit code, wall clock and usage (from the container's cgroup) to the
# termination log, as key=value lines. Exits with the command's status (128 + n when killed
# by signal n).
set -u
work="${INTEGR8S_WORK_DIR:-/work}"
scripts="${INTEGR8S_SCRIPT_DIR:-/scripts}"
out="${INTEGR8S_OUTPUT_DIR:-/tmp}"
cap="${INTEGR8S_MAX_OUTPUT_BYTES:-1048576}"
term="${INTEGR8S_TERMINATION_LOG:-/dev/termination-log}"
file="${INTEGR8S_SCRIPT_FILE:?}"

cp "$scripts/$file" "$work/$file" || exit 126
cd "$work" || exit 126
input=/dev/null
if [ -f "$scripts/stdin" ]; then input="$scripts/stdin"; fi

read -r started _ < /proc/uptime
# In the background, so that a SIGTERM (the pod's deadline, or its deletion) interrupts the
# wait: the command is then killed and what it printed is still reported.
"$@" < "$input" > "$out/.stdout" 2> "$out/.stderr" &
child=$!
trap 'kill -KILL "$child" 2>/dev/null' TERM INT
wait "$child"
code=$?
while kill -0 "$child" 2>/dev/null; do
    wait "$child"
    code=$?
done
read -r ended _ < /proc/uptime

{
    echo "exit_code=$code"
    echo "uptime_started=$started"
    echo "uptime_ended=$ended"
    if [ -r /sys/fs/cgroup/cpu.stat ]; then
        sed -n 's/^usage_usec /cpu_usec=/p' /sys/fs/cgroup/cpu.stat
    fi
    if [ -r /sys/fs/cgroup/memory.peak ]; then
        echo "memory_peak_bytes=$(cat /sys/fs/cgroup/memory.peak)"
    fi
} > "$term" 2>/dev/null

printf 'STDOUT %s\n' "$(wc -c < "$out/.stdout" | tr -d ' ')"
head -c "$cap" "$out/.stdout"
printf '\nSTDERR %s\n' "$(wc -c < "$out/.stderr" | tr -d ' ')"
head -c "$cap" "$out/.stderr"
exit "$code"
