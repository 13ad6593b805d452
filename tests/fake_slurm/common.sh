# Shared by the stand-in SLURM commands in this folder (tests/test_workflow_slurm.py puts the folder
# first on PATH). State lives in $FAKE_SLURM_STATE: <command>.calls (one shell-quoted argument list
# per call), jobs/<id>.args (sbatch's arguments) and jobs/<id>.state ("<id>|<job name>|<STATE>").

state="${FAKE_SLURM_STATE:?set FAKE_SLURM_STATE to a writable folder}"
mkdir -p "$state/jobs"

log_call() {  # log_call COMMAND ARGS...: append this call's arguments, shell-quoted, to one line
    local name=$1 line
    shift
    line=$(printf '%q ' "$@")
    printf '%s\n' "$line" >> "$state/$name.calls"
}

job_states() {  # job_states NAME: "<id>|<STATE>" for every job submitted with --job-name NAME
    local file
    for file in "$state"/jobs/*.state; do
        [ -e "$file" ] || continue
        IFS='|' read -r id name status < "$file"
        [ "$name" = "$1" ] && printf '%s|%s\n' "$id" "$status"
    done
    return 0
}
