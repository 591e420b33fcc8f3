#!/bin/sh
# Proves from inside the instance whether IMDSv1 is still answered. Sent verbatim as the commands of
# AWS-RunShellScript; prints one JSON line {"v1","token","v2","client"} of HTTP statuses (null: nothing answered).
# It never prints the token or any metadata value: the verdict is judged from the statuses alone.
set -u

base=${IMDS_ENDPOINT:-http://169.254.169.254}
base=${base%/}
# A proxy would both falsify the answer and see the token, so IMDS is only ever reached directly.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY

# Every <client>_request METHOD PATH BODY_TARGET reads extra request headers ("Name: value" lines) on stdin, so the
# token is never in an argv that `ps` shows, and prints "<body> <status>": the body only when BODY_TARGET is "-",
# and the status empty or 000 when no HTTP answer came back. Each request is bounded to about 3 s.

curl_request() {
  # -q skips ~/.curlrc; --max-time bounds connect and response together, so a silent endpoint cannot hold us.
  while IFS= read -r header; do printf 'header = "%s"\n' "$header"; done |
    curl -q -s --noproxy '*' --connect-timeout 2 --max-time 3 -X "$1" -K - -o "$3" -w ' %{http_code}' "$base$2"
}

python_request() {
  # The alarm is the hard bound (urllib's timeout is per socket operation); it exits silently, so the status is null.
  python3 -I -c '
import os, signal, sys, urllib.request as request
signal.signal(signal.SIGALRM, lambda *_: os._exit(1))
signal.alarm(3)
method, url, target = sys.argv[1:]
headers = dict(line.split(": ", 1) for line in sys.stdin.read().splitlines() if line)
try:
    opener = request.build_opener(request.ProxyHandler({}))
    response = opener.open(request.Request(url, method=method, headers=headers), timeout=3)
    status, body = response.getcode(), response.read()
except request.HTTPError as error:
    status, body = error.code, b""
except Exception:
    status, body = 0, b""
sys.stdout.write("%s %03d" % (body.decode("ascii", "replace") if target == "-" else "", status))
' "$1" "$base$2" "$3"
}

# wget reports the status only as "  HTTP/1.1 401 ..." lines of -S on stderr: keep the last one (after redirects).
# It prints after wget has exited, so after the body wget wrote to the same stdout.
wget_status() {
  code=000
  while IFS= read -r line; do
    case $line in "  HTTP/"* | HTTP/*) rest=${line#*HTTP/* } && code=${rest%% *} ;; esac
  done
  printf ' %s' "$code"
}

wget_request() {
  if [ "$client" = wget ]; then
    # GNU wget reads headers only from argv or a regular file (not a pipe): a private mktemp file keeps the token
    # out of argv. One try only, as its default 20 would retry a timeout; -T bounds each connect and read rather
    # than the whole request, close enough for a few-byte answer.
    config=$(mktemp) || return
    while IFS= read -r header; do printf 'header = %s\n' "$header"; done >"$config"
    wget --config="$config" --tries=1 --method="$1" -q -S -T 3 -O "$3" "$base$2" 2>&1 >&3 3>&- | wget_status 3>&-
    rm -f "$config"
  elif [ "$1" = GET ]; then
    # Busybox wget cannot send PUT, so it never gets a token: it can only show whether IMDSv1 answers.
    wget -q -S -T 3 -O "$3" "$base$2" 2>&1 >&3 3>&- | wget_status 3>&-
  fi
} 3>&1

request() {
  case $client in
    curl) curl_request "$@" ;;
    python3) python_request "$@" ;;
    wget | busybox-wget) wget_request "$@" ;;
  esac
}

# Anything but a three-digit code (000, empty, killed client) means nothing answered.
status_of() {
  code=${1##* }
  case $code in [1-5][0-9][0-9]) printf %s "$code" ;; *) printf null ;; esac
}

# Minimal images lack curl: fall back to python3, then wget.
if command -v curl >/dev/null 2>&1; then
  client=curl
elif command -v python3 >/dev/null 2>&1; then
  client=python3
elif command -v wget >/dev/null 2>&1; then
  case $(wget --version 2>/dev/null) in *"GNU Wget"*) client=wget ;; *) client=busybox-wget ;; esac
else
  client=none
fi

v1=$(status_of "$(request GET /latest/meta-data/ /dev/null </dev/null)")

token_answer=$(echo 'X-aws-ec2-metadata-token-ttl-seconds: 60' | request PUT /latest/api/token -)
token_status=$(status_of "$token_answer")
token=${token_answer% *}
# A real token is base64; anything else is not sent back, as it would be spliced into a client's header config.
case $token in '' | *[!A-Za-z0-9+/=_-]*) token= ;; esac

v2=null
if [ "$token_status" = 200 ] && [ -n "$token" ]; then
  v2=$(status_of "$(printf 'X-aws-ec2-metadata-token: %s\n' "$token" | request GET /latest/meta-data/ /dev/null)")
fi

printf '{"v1":%s,"token":%s,"v2":%s,"client":"%s"}\n' "$v1" "$token_status" "$v2" "$client"
