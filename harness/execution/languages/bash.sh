# evalboard's call channel for Bash (see runtimes.py). Both sides are Bash: the program's (it answers
# calls of its function) and the trusted checker's (the benchmark's tests, whose entry point is a
# proxy). Values are strings (a function's "return value" is what it prints, as MultiPL-E's tests
# read it with $(...)). A message is a line with its number of fields, then each field as a line
# with its length in bytes followed by exactly that many bytes.

__evalboard_send() {  # fields -> one message on fd 4
    local LC_ALL=C field message="$#"$'\n'
    for field in "$@"; do message+="${#field}"$'\n'"$field"; done
    printf '%s' "$message" >&4
}

__evalboard_receive() {  # one message from fd 3 -> the array __evalboard_fields; fails at its end
    local LC_ALL=C count length field i=0
    __evalboard_fields=()
    IFS= read -r count <&3 || return 1
    [[ $count =~ ^[0-9]{1,6}$ ]] || return 2
    while [[ $i -lt $count ]]; do
        IFS= read -r length <&3 || return 2
        [[ $length =~ ^[0-9]{1,9}$ ]] || return 2
        field=
        if [[ $length -gt 0 ]]; then
            IFS= read -r -N "$length" field <&3 || return 2
        fi
        [[ ${#field} -eq $length ]] || return 2
        __evalboard_fields+=("$field")
        i=$((i + 1))
    done
}

# The program's side: answer calls of the function "$1" until the checker closes the channel.
__evalboard_serve() {
    local entry=$1
    if ! declare -F "$entry" >/dev/null; then
        __evalboard_send error "$entry is not a function"
        return
    fi
    __evalboard_send ready
    while __evalboard_receive; do
        [[ ${__evalboard_fields[0]-} == call ]] || return
        __evalboard_send ok "$("$entry" "${__evalboard_fields[@]:1}" 3<&- 4>&-)"
    done
}

# The checker's side (trusted): anything but a well-formed answer ends the tests as failed (the
# calls run in $(...) subshells, so the failure kills the test script itself).
__evalboard_main=$$
__evalboard_fail() {
    printf 'CandidateFailed: %s\n' "$1" >&2
    kill -KILL "$__evalboard_main"
    exit 1
}

__evalboard_answer() {
    __evalboard_receive
    case $? in
        0) ;;
        1) __evalboard_fail "the program ended before answering" ;;
        *) __evalboard_fail "a malformed message" ;;
    esac
}

__evalboard_expect_ready() {
    __evalboard_answer
    if [[ ${__evalboard_fields[0]-} != ready ]]; then
        if [[ ${__evalboard_fields[0]-} == error ]]; then
            __evalboard_fail "${__evalboard_fields[1]-}"
        fi
        __evalboard_fail "the program did not load"
    fi
}

__evalboard_call() {
    __evalboard_send call "$@"
    __evalboard_answer
    if [[ ${__evalboard_fields[0]-} != ok || ${#__evalboard_fields[@]} -ne 2 ]]; then
        __evalboard_fail "a malformed answer"
    fi
    printf '%s' "${__evalboard_fields[1]}"
}
