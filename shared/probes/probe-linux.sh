#!/bin/sh
# Proves from inside the instance whether IMDSv1 is still answered. Verbatim the only step of the guard's own
# Command document (shared/probes/probe-document.ts); prints one JSON line of HTTP statuses (null: no answer in time):
#   {"v1","v1Credentials","token","v2","client"} for the IPv4 endpoint, "v6":{the same four} for the IPv6 endpoint,
#   and "answered": which endpoints answered at all.
# It never prints the token or any metadata value: the verdict is judged from the statuses alone.
set -u

base=
base4=${IMDS_ENDPOINT:-http://169.254.169.254}
base4=${base4%/}
base6=${IMDS_ENDPOINT_V6:-http://[fd00:ec2::254]}
base6=${base6%/}
# A proxy would both falsify the answer and see the token, so IMDS is only ever reached directly.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY

# The test harnesses set this: a run that forgot an override must not reach a real metadata address.
if [ "${IMDS_PROBE_LOOPBACK_ONLY:-}" = 1 ]; then
  for endpoint in "$base4" "$base6"; do
    case $endpoint in
      http://127.0.0.1:* | "http://[::1]:"*) ;;
      *)
        echo "probe-linux.sh: $endpoint is not a loopback endpoint and IMDS_PROBE_LOOPBACK_ONLY=1" >&2
        exit 2
        ;;
    esac
  done
fi

# The GNU wget header file is the only place the token touches disk, and busybox's request FIFO the only path the
# token passes through: both go on every way out, kill included.
config= fifo=
cleanup() {
  if [ -n "$config" ]; then rm -f "$config"; fi
  if [ -n "$fifo" ]; then rm -f "$fifo" && rmdir "${fifo%/*}"; fi
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# No request starts 11 whole seconds into the probe (under 12 s, as date counts whole seconds), so the last one,
# bounded to 3 s, ends before 15 s.
started=$(date +%s 2>/dev/null) || started=
within_probe_deadline() {
  [ -z "$started" ] && return 0
  now=$(date +%s 2>/dev/null) || return 0
  [ $((now - started)) -lt 11 ]
}

# Every <client>_request METHOD PATH BODY_TARGET reads extra request headers ("Name: value" lines) on stdin, so the
# token is never in an argv that `ps` shows, and prints "<body> <status>": the body only when BODY_TARGET is "-",
# the status 000 or empty when no HTTP answer came back. Each request has 3 s for connect, headers and body
# together; one cut short at the deadline prints "<status>-cut": the status the server sent (a 200 sent slowly is
# still IMDSv1 answering) with a body that is not to be trusted. No client follows a redirect: a 3xx is the answer,
# and the token never leaves the IMDS base URL.

curl_request() {
  # -q skips ~/.curlrc; -g keeps [::1] a literal; --max-time bounds connect, headers and body together. A request cut
  # short exits non-zero after -w has printed the status it saw (000 if none).
  while IFS= read -r header; do printf 'header = "%s"\n' "$header"; done |
    curl -q -s -g --noproxy '*' --connect-timeout 2 --max-time 3 --max-redirs 0 -X "$1" -K - -o "$3" \
      -w ' %{http_code}' "$base$2" || printf -- -cut
}

python_request() {
  # The alarm is the hard bound (urllib's timeout is per socket operation): it prints the status seen, if any.
  # Refusing every redirect makes urllib raise the 3xx as an HTTPError instead of following it with our headers.
  python3 -I -c '
import os, signal, sys, urllib.request as request
seen = []
def cut(*_):
    sys.stdout.write(" %03d-cut" % seen[0] if seen else "")
    sys.stdout.flush()
    os._exit(1)
signal.signal(signal.SIGALRM, cut)
signal.alarm(3)
method, url, target = sys.argv[1:]
headers = dict(line.split(": ", 1) for line in sys.stdin.read().splitlines() if line)
class NoRedirect(request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
try:
    opener = request.build_opener(request.ProxyHandler({}), NoRedirect())
    response = opener.open(request.Request(url, method=method, headers=headers), timeout=3)
    seen.append(response.getcode())
    status, body = response.getcode(), response.read()
except request.HTTPError as error:
    seen.append(error.code)
    status, body = error.code, b""
except Exception:
    status, body = 0, b""
sys.stdout.write("%s %03d" % (body.decode("ascii", "replace") if target == "-" else "", status))
' "$1" "$base$2" "$3"
}

# Runs a command for at most 3 s. `timeout` is missing on minimal images, so a background killer does it; it holds
# none of our pipes, so a client that finished in time is not kept waiting for it. A kill shows as exit 137.
# The command keeps the caller's stdin: a non-interactive shell would give a background job /dev/null instead.
bounded() {
  { "$@" <&5 5<&- & } 5<&0
  job=$!
  (
    sleep 3
    kill -9 "$job"
  ) </dev/null >/dev/null 2>&1 &
  guard=$!
  wait "$job"
  rc=$?
  kill "$guard" 2>/dev/null
  return "$rc"
}

# wget reports the status only as "  HTTP/1.1 401 ..." lines of -S on stderr: keep the first one (with
# --max-redirect=0 there is only one). A kill at the deadline marks it cut short. It prints after wget has exited, so
# after the body wget wrote to the same stdout.
wget_status() {
  code= cut=
  while IFS= read -r line; do
    case $line in
      "wget-exit 137") cut=-cut ;;
      "  HTTP/"* | HTTP/*) if [ -z "$code" ]; then rest=${line#*HTTP/* } && code=${rest%% *}; fi ;;
    esac
  done
  printf ' %s%s' "${code:-000}" "$cut"
}

wget_request() {
  # GNU wget reads headers only from argv or a regular file (not a pipe): the private mktemp file keeps the token
  # out of argv. One try only, as its default 20 would retry a timeout; -T bounds each read only, so `bounded`
  # bounds the request; --max-redirect=0 reports a 3xx instead of following it with the token.
  [ -n "$config" ] || return
  while IFS= read -r header; do printf 'header = %s\n' "$header"; done >"$config"
  {
    bounded wget --config="$config" --no-proxy --tries=1 --max-redirect=0 --method="$1" -q -S -T 3 -O "$3" \
      "$base$2" 2>&1 >&3 3>&- || echo "wget-exit $?"
  } | wget_status 3>&-
  : >"$config"
} 3>&1

# Reads the raw answer busybox nc relays: the status line's code, the first line of the body when it is wanted, and
# the "nc-exit" line nc_request adds when nc did not end cleanly (137: killed at the deadline). The server's bytes
# are only ever compared, never run or echoed.
nc_answer() {
  code= cut= part=status body=
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in
      "nc-exit 137") cut=-cut && continue ;;
      "nc-exit "*) continue ;;
    esac
    line=${line%"$cr"}
    case $part in
      status)
        case $line in "HTTP/1."[01]" "[1-5][0-9][0-9]*) rest=${line#* } && code=${rest%% *} ;; esac
        part=headers
        ;;
      headers) [ -n "$line" ] || part=body ;;
      body) if [ "$1" = - ] && [ -z "$body" ]; then body=$line; fi ;;
    esac
  done
  printf '%s %s%s' "$body" "${code:-000}" "$cut"
}

nc_request() {
  # Busybox wget follows every redirect (it has no --max-redirect) and cannot PUT, so busybox speaks HTTP/1.0 itself
  # through `busybox nc`: the status line is the answer and nothing is ever followed. nc ends at the server's close,
  # but when its stdin ends it half-closes the connection, and a server may then close without answering (Node's
  # does), so the request comes through a FIFO whose writer stays open (sleeping) until the answer is in; the token
  # passes only through that kernel pipe.
  [ -n "$fifo" ] || return
  hostport=${base#http://}
  hostport=${hostport%%/*}
  case $hostport in
    "["*) host=${hostport#"["} && host=${host%%"]"*} && port=${hostport#*"]"} ;;
    *) host=${hostport%%:*} && port=${hostport#"$host"} ;;
  esac
  port=${port#:}
  request="$1 $2 HTTP/1.0${cr}
Host: $hostport${cr}
"
  while IFS= read -r header; do request="$request$header${cr}
"; done
  (
    printf '%s\r\n' "$request"
    exec busybox sleep 4
  ) >"$fifo" 2>/dev/null &
  writer=$!
  {
    bounded busybox nc "$host" "${port:-80}" <"$fifo" 2>/dev/null || printf '\nnc-exit %s\n' "$?"
  } | nc_answer "$3"
  kill "$writer" 2>/dev/null
  request=
}

request() {
  within_probe_deadline || return
  case $client in
    curl) curl_request "$@" ;;
    python3) python_request "$@" ;;
    wget) wget_request "$@" ;;
    busybox-nc) nc_request "$@" ;;
  esac
}

# Anything but a three-digit code (000, empty, killed client) means nothing answered.
status_of() {
  code=${1##* }
  code=${code%-cut}
  case $code in [1-5][0-9][0-9]) printf %s "$code" ;; *) printf null ;; esac
}

# Probes the endpoint at $base: sets e_v1, e_creds (token-less GETs of the listing and of the credentials path, the
# one an SSRF attacker wants), e_token (the token PUT) and e_v2 (a GET with the token). An endpoint that does not
# answer, or answers too slowly, gets no more of the probe's 15 s: its later statuses stay null.
probe_endpoint() {
  e_v1=null e_creds=null e_token=null e_v2=null
  answer=$(request GET /latest/meta-data/ /dev/null </dev/null)
  e_v1=$(status_of "$answer")
  case $e_v1:$answer in null:* | *-cut) return ;; esac
  answer=$(request GET /latest/meta-data/iam/security-credentials/ /dev/null </dev/null)
  e_creds=$(status_of "$answer")
  case $answer in *-cut) return ;; esac
  answer=$(echo 'X-aws-ec2-metadata-token-ttl-seconds: 60' | request PUT /latest/api/token -)
  e_token=$(status_of "$answer")
  token=${answer% *}
  # A real token is base64; anything else is not sent back, as it would be spliced into a client's header config.
  case $answer:$token in *-cut:* | *: | *:*[!A-Za-z0-9+/=_-]*) token= ;; esac
  if [ "$e_token" = 200 ] && [ -n "$token" ]; then
    e_v2=$(status_of "$(printf 'X-aws-ec2-metadata-token: %s\n' "$token" | request GET /latest/meta-data/ /dev/null)")
  fi
  token= answer=
}

# Minimal images lack curl: fall back to python3, then GNU wget, then busybox's nc (never busybox wget, which
# follows redirects and cannot PUT).
client=none
if command -v curl >/dev/null 2>&1; then
  client=curl
elif command -v python3 >/dev/null 2>&1; then
  client=python3
elif command -v wget >/dev/null 2>&1; then
  case $(wget --version 2>/dev/null) in *"GNU Wget"*) client=wget ;; esac
fi
if [ "$client" = none ] && command -v busybox >/dev/null 2>&1 && busybox nc --help >/dev/null 2>&1; then
  client=busybox-nc
fi
cr=$(printf '\r')
if [ "$client" = wget ]; then config=$(mktemp 2>/dev/null) || config=; fi
if [ "$client" = busybox-nc ] && fifo=$(busybox mktemp -d 2>/dev/null); then
  fifo=$fifo/request
  busybox mkfifo -m 600 "$fifo" 2>/dev/null || { rmdir "${fifo%/*}" && fifo=; }
fi

base=$base4
probe_endpoint
v4="\"v1\":$e_v1,\"v1Credentials\":$e_creds,\"token\":$e_token,\"v2\":$e_v2"
answered=
[ "$e_v1$e_creds$e_token$e_v2" = nullnullnullnull ] || answered='"ipv4"'

base=$base6
probe_endpoint
v6="\"v1\":$e_v1,\"v1Credentials\":$e_creds,\"token\":$e_token,\"v2\":$e_v2"
[ "$e_v1$e_creds$e_token$e_v2" = nullnullnullnull ] || answered="${answered:+$answered,}\"ipv6\""

printf '{%s,"client":"%s","v6":{%s},"answered":[%s]}\n' "$v4" "$client" "$v6" "$answered"
