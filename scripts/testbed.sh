#!/usr/bin/env bash
# Test bed for dbuild: the local services the integration and end-to-end
# tests talk to, all on loopback, none needing the internet.
#
#   bash scripts/testbed.sh [up]   install what is missing, start what is down (idempotent)
#   bash scripts/testbed.sh down   stop what this script started (never a dockerd it did not start)
#   bash scripts/testbed.sh status one line per service; exit 1 if any is down
#   bash scripts/testbed.sh env    print `export` lines for the tests: eval "$(bash scripts/testbed.sh env)"
#
# Services:
#   dockerd          Debian docker.io, /var/run/docker.sock (reused if it answers)
#   localbusybox     image localbusybox:latest imported from busybox-static (no registry)
#   docker-registry  127.0.0.1:5000, htpasswd auth (TEST_USER / TEST_PASSWORD below)
#   git daemon       git://127.0.0.1:9418/{demo,failing,nested}.git (fixtures, deterministic)
#   git smart HTTP   http://127.0.0.1:8418/NAME.git (anonymous) and /private/NAME.git (basic auth)
#   git smart HTTPS  https://127.0.0.1:8443/... (socat TLS in front of the above; test CA)
#   git over ssh     ssh://root@127.0.0.1:8422/var/lib/dbuild-testbed/git/NAME.git (generated keys)
#   podman service   unix://$STATE/podman.sock (Docker-compatible API)
#   (socat, openssl and ssh/sshd are installed for the engine transport tests, which start
#   their own TCP, TLS and ssh relays to dockerd on loopback and stop them again)
#
# Everything started here runs in its own session (setsid) with its log under
# $STATE/log and its pid under $STATE/run, so it survives this script and a
# SIGKILL of any of it is repaired by the next `up`.
#
# The script can be sourced (it then defines the functions and does nothing),
# which is how the stale-pid-file logic is tested without touching a live dockerd.
set -euo pipefail

# ---------------------------------------------------------------- settings --
STATE=${DBUILD_TESTBED_STATE:-/var/lib/dbuild-testbed}
DOCKER_SOCK=${DBUILD_TESTBED_DOCKER_SOCK:-/var/run/docker.sock}
DOCKER_PIDFILE=${DBUILD_TESTBED_DOCKER_PIDFILE:-/var/run/docker.pid}
# Where dockerd keeps the containerd it supervises (pid file and sockets).
CONTAINERD_DIR=${DBUILD_TESTBED_CONTAINERD_DIR:-/var/run/docker/containerd}
DOCKERD_TIMEOUT=${DBUILD_TESTBED_DOCKERD_TIMEOUT:-60}
# Extra dockerd arguments, split on blanks (for testing the start path with a
# second, isolated dockerd: --data-root, --exec-root, --bridge=none, ...).
DOCKERD_EXTRA_ARGS=${DBUILD_TESTBED_DOCKERD_ARGS:-}
# Set to 0 to neither start nor require the podman API service.
WANT_PODMAN=${DBUILD_TESTBED_PODMAN:-1}

BASE_IMAGE_REPO=localbusybox
BASE_IMAGE=$BASE_IMAGE_REPO:latest

REGISTRY_ADDR=127.0.0.1:5000
# Test-only credentials, used for the registry and the private smart-HTTP git.
TEST_USER=alice
TEST_PASSWORD=dbuild-test-secret-7Q

GIT_HOST=127.0.0.1
GIT_PORT=9418
GIT_HTTP_PORT=8418
GIT_SSH_PORT=8422
GIT_HTTPS_PORT=8443

PODMAN_SOCK=$STATE/podman.sock

# Packages the test bed needs (Debian names).
PACKAGES=(docker.io docker-registry apache2-utils busybox-static podman git curl python3 ca-certificates socat openssl openssh-client openssh-server musl-tools)

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HELPER_DIR=$SCRIPT_DIR/testbed
LOG_DIR=$STATE/log
RUN_DIR=$STATE/run
GIT_ROOT=$STATE/git

# ----------------------------------------------------------------- helpers --
log() { printf 'testbed: %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

# pid_alive PID: the process exists (signal 0 can be delivered) and is not a
# zombie (this machine's pid 1 may be slow to reap orphans, and a zombie
# dockerd still shows its name).
pid_alive() {
	[[ $1 =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null || return 1
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z && ${stat:0:1} != X ]]
}

# pid_comm PID: the kernel's short name of the process (empty if gone).
pid_comm() { cat "/proc/$1/comm" 2>/dev/null || true; }

# pid_cmdline PID: the command line, arguments joined by spaces.
pid_cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; }

# read_pidfile FILE: print the pid in FILE, or nothing.
read_pidfile() {
	local pid=""
	if [[ -r $1 ]]; then read -r pid <"$1" 2>/dev/null || true; fi
	[[ $pid =~ ^[0-9]+$ ]] && printf '%s\n' "$pid"
	return 0
}

# our_pid NAME PATTERN: print the pid of service NAME started by this script,
# if it is still alive and its command line still contains PATTERN (so a
# recycled pid is never taken for ours).
our_pid() {
	local pid
	pid=$(read_pidfile "$RUN_DIR/$1.pid")
	[[ -n $pid ]] && pid_alive "$pid" && [[ $(pid_cmdline "$pid") == *"$2"* ]] && printf '%s\n' "$pid"
	return 0
}

# wait_until SECONDS CMD...: poll CMD until it succeeds; fail after SECONDS.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
}

# start_bg NAME CMD...: start CMD detached (own session, stdin from /dev/null,
# output appended to $LOG_DIR/NAME.log, lock fd closed) and record its pid in
# $RUN_DIR/NAME.pid. The child writes its own pid, then execs CMD.
start_bg() {
	local name=$1 pidf=$RUN_DIR/$1.pid
	shift
	rm -f "$pidf"
	printf '\n==== %s starting: %s\n' "$(date -u +%FT%TZ)" "$*" >>"$LOG_DIR/$name.log"
	# shellcheck disable=SC2016 # $$ and $@ are for the inner shell
	setsid nohup bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidf" "$@" \
		>>"$LOG_DIR/$name.log" 2>&1 </dev/null 9>&- &
	wait_until 10 test -s "$pidf" || die "$name: did not start (see $LOG_DIR/$name.log)"
}

# stop_pid NAME PID: TERM, wait up to 10 s, then KILL.
stop_pid() {
	local name=$1 pid=$2 i
	log "$name: stopping pid $pid"
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		pid_alive "$pid" || return 0
		sleep 0.2
	done
	log "$name: pid $pid ignored SIGTERM; sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
}

# fail_with_log NAME MESSAGE: print the tail of NAME's log and exit non-zero.
fail_with_log() {
	log "---- last lines of $LOG_DIR/$1.log ----"
	tail -n 40 "$LOG_DIR/$1.log" >&2 || true
	die "$2"
}

# write_if_changed FILE: write stdin to FILE; succeed only if FILE changed.
write_if_changed() {
	local new
	new=$(cat)
	if [[ -f $1 ]] && [[ $(cat "$1") == "$new" ]]; then
		return 1
	fi
	printf '%s\n' "$new" >"$1.tmp"
	mv "$1.tmp" "$1"
}

urlencode() {
	local s=$1 out="" c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[a-zA-Z0-9.~_-]) out+=$c ;;
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s' "$out"
}

# --------------------------------------------------------------- packages --
# Packages whose installation would start a service (docker.io, docker-registry)
# must not start it: the test bed starts its own, bound to loopback. The Debian
# way is a policy-rc.d answering 101 while apt runs.
POLICY_RC_D=/usr/sbin/policy-rc.d
POLICY_MARK="written by dbuild scripts/testbed.sh during apt-get install"

ensure_packages() {
	# A policy-rc.d of ours left by a run killed during apt-get: remove it.
	if grep -qF "$POLICY_MARK" "$POLICY_RC_D" 2>/dev/null; then
		rm -f "$POLICY_RC_D"
	fi
	local missing=() p status
	for p in "${PACKAGES[@]}"; do
		status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
		[[ $status == ii* ]] || missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	log "installing missing packages: ${missing[*]}"
	local policy=$POLICY_RC_D made_policy=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\n# %s\nexit 101\n' "$POLICY_MARK" >"$policy"
		chmod 0755 "$policy"
		made_policy=1
	fi
	local rc=0
	# A partly failed update (one unreachable source) need not stop the install.
	apt-get update -q || log "warning: apt-get update failed; trying the install anyway"
	# With recommends, as verified (podman then gets netavark, not CNI plugins).
	# needrestart (recommended by docker.io) must only list, never restart.
	DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l NEEDRESTART_SUSPEND=1 \
		apt-get install -y -q "${missing[@]}" || rc=$?
	((made_policy)) && rm -f "$policy"
	((rc == 0)) || die "apt-get failed (exit $rc) installing: ${missing[*]}"
}

# ----------------------------------------------------------------- dockerd --
docker_ping() {
	[[ $(curl -sS --max-time 3 --unix-socket "$DOCKER_SOCK" http://localhost/_ping 2>/dev/null) == OK ]]
}

# is_live_dockerd PID: PID is a running dockerd.
is_live_dockerd() { pid_alive "$1" && [[ $(pid_comm "$1") == dockerd ]]; }

# live_dockerd_pids: every running dockerd on the machine.
live_dockerd_pids() {
	local d
	for d in /proc/[0-9]*; do
		[[ $(cat "$d/comm" 2>/dev/null) == dockerd ]] && pid_alive "${d#/proc/}" && printf '%s\n' "${d#/proc/}"
	done
	return 0
}

# clear_stale_docker_pidfile: remove $DOCKER_PIDFILE only if the pid in it is
# not a live dockerd (dead, or recycled by another program). A dockerd that
# is alive is never touched.
clear_stale_docker_pidfile() {
	[[ -e $DOCKER_PIDFILE ]] || return 0
	local pid
	pid=$(read_pidfile "$DOCKER_PIDFILE")
	if [[ -n $pid ]] && is_live_dockerd "$pid"; then
		return 0
	fi
	if [[ -n $pid ]] && pid_alive "$pid"; then
		log "dockerd: $DOCKER_PIDFILE names pid $pid, which is now '$(pid_comm "$pid")', not dockerd: removing the stale pid file"
	else
		log "dockerd: $DOCKER_PIDFILE names pid '${pid:-?}', which is not running: removing the stale pid file"
	fi
	rm -f "$DOCKER_PIDFILE"
}

# clear_stale_containerd: dockerd reuses the containerd named in its pid file
# if that pid is alive, so a recycled pid would make it talk to nothing. Remove
# the pid file and sockets only when no containerd runs under that pid.
clear_stale_containerd() {
	local pidf=$CONTAINERD_DIR/containerd.pid pid
	[[ -e $pidf ]] || return 0
	pid=$(read_pidfile "$pidf")
	if [[ -n $pid ]] && pid_alive "$pid" && [[ $(pid_comm "$pid") == containerd ]]; then
		log "containerd: pid $pid still runs; dockerd will reuse it"
		return 0
	fi
	log "containerd: stale pid file $pidf (pid '${pid:-?}' is not containerd): removing it and its sockets"
	rm -f "$pidf" "$CONTAINERD_DIR/containerd.sock" "$CONTAINERD_DIR/containerd.sock.ttrpc" \
		"$CONTAINERD_DIR/containerd-debug.sock"
}

# docker_bridge_lost: true when dockerd uses the default bridge and docker0 does not exist.
docker_bridge_lost() {
	[[ " $DOCKERD_EXTRA_ARGS " == *" --bridge=none "* || " $DOCKERD_EXTRA_ARGS " == *" -b none "* ]] && return 1
	command -v ip >/dev/null 2>&1 || return 1
	! ip link show docker0 >/dev/null 2>&1
}

ensure_dockerd() {
	if docker_ping && ! docker_bridge_lost; then
		log "dockerd: $DOCKER_SOCK answers"
		return 0
	fi
	if docker_ping; then
		# Seen here: the docker0 bridge vanished under a running dockerd (another network
		# tool removed it); every RUN then fails. dockerd recreates it only at start.
		log "dockerd: answers but its docker0 bridge is gone; restarting it"
		local p
		for p in $(live_dockerd_pids); do stop_pid dockerd "$p"; done
	fi
	# A dockerd that is alive but not answering (starting, or busy) is waited
	# for, never killed and never doubled.
	local pids
	pids=$(live_dockerd_pids)
	if [[ -n $pids ]]; then
		log "dockerd: running (pid $(echo "$pids" | tr '\n' ' ' | sed 's/ $//')) but $DOCKER_SOCK does not answer yet; waiting up to ${DOCKERD_TIMEOUT}s"
		wait_until "$DOCKERD_TIMEOUT" docker_ping && return 0
		die "dockerd is running but $DOCKER_SOCK does not answer /_ping after ${DOCKERD_TIMEOUT}s; not killing a dockerd"
	fi
	clear_stale_docker_pidfile
	clear_stale_containerd
	log "dockerd: starting"
	local extra=()
	read -r -a extra <<<"$DOCKERD_EXTRA_ARGS"
	start_bg dockerd dockerd --pidfile "$DOCKER_PIDFILE" -H "unix://$DOCKER_SOCK" "${extra[@]}"
	local pid
	pid=$(read_pidfile "$RUN_DIR/dockerd.pid")
	# Record that this script started it, so `down` may stop it (and only it).
	printf '%s\n' "$pid" >"$RUN_DIR/dockerd.started-by-testbed"
	local deadline=$((SECONDS + DOCKERD_TIMEOUT))
	until docker_ping; do
		pid_alive "$pid" || fail_with_log dockerd "dockerd (pid $pid) exited during startup"
		((SECONDS < deadline)) || fail_with_log dockerd "dockerd (pid $pid) did not answer /_ping within ${DOCKERD_TIMEOUT}s"
		sleep 0.3
	done
	log "dockerd: up (pid $pid)"
}

# ------------------------------------------------------------ base image --
# image_exists SOCKET NAME
image_exists() {
	curl -fsS --max-time 10 -o /dev/null --unix-socket "$1" "http://localhost/images/$2/json" 2>/dev/null
}

# build_busybox_rootfs_tar OUT: a minimal rootfs from busybox-static, as a
# tar with fixed owners, order and times.
build_busybox_rootfs_tar() {
	local out=$1 tmp rootfs applet dir up
	tmp=$(mktemp -d "$STATE/tmp/rootfs.XXXXXX")
	rootfs=$tmp/rootfs
	mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,var,proc,sys,dev,tmp}
	chmod 1777 "$rootfs/tmp"
	chmod 0700 "$rootfs/root"
	install -m 0755 /bin/busybox "$rootfs/bin/busybox"
	# --list-full prints e.g. bin/sh, usr/bin/awk, sbin/ifconfig.
	while read -r applet; do
		[[ -n $applet && $applet != bin/busybox ]] || continue
		dir=${applet%/*}
		up=$(printf '%s' "$dir" | sed 's:[^/][^/]*:..:g')
		ln -sfn "$up/bin/busybox" "$rootfs/$applet"
	done < <(/bin/busybox --list-full)
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
	tar -C "$rootfs" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@946684800 -cf "$out" .
	rm -rf "$tmp"
}

# import_base_image SOCKET: import the busybox rootfs as $BASE_IMAGE through
# the (Docker-compatible) API on SOCKET.
import_base_image() {
	local sock=$1 tarf resp query
	tarf=$STATE/tmp/localbusybox-rootfs.tar
	build_busybox_rootfs_tar "$tarf"
	query="fromSrc=-&repo=$BASE_IMAGE_REPO&tag=latest"
	query+="&changes=$(urlencode 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')"
	query+="&changes=$(urlencode 'CMD ["sh"]')"
	query+="&message=$(urlencode 'dbuild test bed: busybox-static rootfs')"
	resp=$(curl -sS --max-time 120 --unix-socket "$sock" -X POST -H 'Content-Type: application/x-tar' \
		--data-binary "@$tarf" "http://localhost/images/create?$query") || die "import of $BASE_IMAGE via $sock failed"
	rm -f "$tarf"
	if [[ $resp == *'"error'* ]]; then
		die "import of $BASE_IMAGE via $sock failed: $resp"
	fi
}

ensure_base_image() {
	if image_exists "$DOCKER_SOCK" "$BASE_IMAGE"; then
		log "image: $BASE_IMAGE present"
		return 0
	fi
	log "image: importing $BASE_IMAGE from busybox-static"
	import_base_image "$DOCKER_SOCK"
	image_exists "$DOCKER_SOCK" "$BASE_IMAGE" || die "image $BASE_IMAGE still absent after import"
	log "image: $BASE_IMAGE imported"
}

# ---------------------------------------------------------------- registry --
# registry_code [USER:PASSWORD]: HTTP status of GET /v2/.
registry_code() {
	local auth=()
	[[ $# -gt 0 ]] && auth=(-u "$1")
	curl -s -o /dev/null -w '%{http_code}' --max-time 3 "${auth[@]}" "http://$REGISTRY_ADDR/v2/" 2>/dev/null || true
}

# registry_ok: answers 401 without and 200 with the test credentials.
registry_ok() {
	[[ $(registry_code) == 401 && $(registry_code "$TEST_USER:$TEST_PASSWORD") == 200 ]]
}

ensure_registry() {
	local dir=$STATE/registry changed=0
	mkdir -p "$dir/data"
	if [[ ! -s $dir/htpasswd ]]; then
		htpasswd -Bbn "$TEST_USER" "$TEST_PASSWORD" >"$dir/htpasswd.tmp"
		mv "$dir/htpasswd.tmp" "$dir/htpasswd"
		changed=1
	fi
	write_if_changed "$dir/config.yml" <<EOF && changed=1
# Written by dbuild scripts/testbed.sh; regenerated on every 'up'.
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $REGISTRY_ADDR
  secret: dbuild-testbed-not-a-secret
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: dbuild-testbed
    path: $dir/htpasswd
EOF
	local pid
	pid=$(our_pid registry "$dir/config.yml")
	if [[ -n $pid ]] && ((changed)); then
		log "registry: configuration changed; restarting"
		stop_pid registry "$pid"
		pid=""
	fi
	if registry_ok; then
		log "registry: $REGISTRY_ADDR answers (401 anonymous, 200 as $TEST_USER)"
		return 0
	fi
	if [[ -n $pid ]]; then
		# Ours, alive, but not answering: give it a moment, then replace it.
		if ! wait_until 5 registry_ok; then
			stop_pid registry "$pid"
		else
			return 0
		fi
	fi
	log "registry: starting on $REGISTRY_ADDR"
	start_bg registry docker-registry serve "$dir/config.yml"
	pid=$(read_pidfile "$RUN_DIR/registry.pid")
	local deadline=$((SECONDS + 30))
	until registry_ok; do
		pid_alive "$pid" || fail_with_log registry "docker-registry exited during startup (port $REGISTRY_ADDR in use?)"
		((SECONDS < deadline)) || fail_with_log registry "docker-registry did not answer on $REGISTRY_ADDR within 30s"
		sleep 0.2
	done
	log "registry: up (pid $pid)"
}

# ------------------------------------------------------------ git fixtures --
# Fixture repositories are built in a scratch work tree with fixed identities
# and dates and no user/system git configuration, then cloned bare into
# $GIT_ROOT, so their commit ids are the same on every machine and run.
# To add a fixture: write fixture_NAME (it gets an empty work tree as $1 and
# commits with fixture_commit), and add NAME to FIXTURES.
#
# What the fixtures hold (commit ids as built by this version of the code):
#   demo.git     main 48dddf5bf53202dc6bc206d3129170fd39ba8250: data.txt = "demo data main"
#                tag v1 (annotated, c9b3e7a2bfe0f2bd995c8157f14220b271800436)
#                  -> bae6733a0ee9f3f6ab2b4f4ef3249bb4338c6b2e: data.txt = "demo data v1"
#                Dockerfile, hello.sh (0755), data.txt (0644), link-to-data -> data.txt,
#                sub/nested.txt, sub/deeper/deep.txt. The image has /hello.sh,
#                /data.txt, /from-run.txt ("built-by-run"), the whole context under
#                /ctx/, and CMD /hello.sh ("hello from demo").
#   failing.git  main a24fbb4ecf5ac512389a6c35277c91452e3d8447: its RUN prints
#                "dbuild-expected-failure" on stderr and exits 3.
#   nested.git   main bdee0770e9b36fe5126b019c823922004f79dbc4: no Dockerfile at the
#                root; app/Dockerfile (build #main:app) gives /greeting.txt
#                ("hello from app/") and /from-run.txt ("built-from-app").
#   empty.git    no commits at all (HEAD -> refs/heads/main, unborn).
#   attrs.git    main: .gitattributes asking for checkout conversions (eol=crlf, text=auto,
#                ident, -text in a subdirectory, binary, filter=lfs with a Git LFS pointer);
#                some blobs were committed with CRLF before the attributes existed. Tests
#                compare a `git clone` of it with what dbuild sends.
#   subdep.git   main = 2nd commit ("dep v2"); its 1st commit ("dep v1") is no branch tip.
#   super.git    main: a Dockerfile and submodule lib/dep (url ../subdep.git) pinned to
#                subdep's 1st commit (not a tip: the moby #40616 trap). The image has
#                /dep.txt ("dep v1") copied from the submodule.
#   badsub.git   main: submodule missing/ whose url (../no-such-repo.git) does not exist.
FIXTURES=(demo failing nested empty attrs subdep super badsub)

FIXTURE_DATE="946684800 +0000"

fixture_git() {
	GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME=/nonexistent \
		GIT_AUTHOR_NAME="dbuild fixture" GIT_AUTHOR_EMAIL="fixture@dbuild.invalid" \
		GIT_COMMITTER_NAME="dbuild fixture" GIT_COMMITTER_EMAIL="fixture@dbuild.invalid" \
		GIT_AUTHOR_DATE="$FIXTURE_DATE" GIT_COMMITTER_DATE="$FIXTURE_DATE" \
		git "$@"
}

# fixture_commit WORKTREE EPOCH MESSAGE: commit everything in WORKTREE.
fixture_commit() {
	local FIXTURE_DATE="$2 +0000"
	fixture_git -C "$1" add -A
	fixture_git -C "$1" -c core.fileMode=true commit -q --no-verify -m "$3"
}

# fixture_tag WORKTREE EPOCH TAG MESSAGE: annotated tag on HEAD.
fixture_tag() {
	local FIXTURE_DATE="$2 +0000"
	fixture_git -C "$1" tag -a "$3" -m "$4"
}

# demo: v1 (annotated tag) is the first commit, main the second, which only
# changes data.txt ("demo data v1" -> "demo data main").
fixture_demo() {
	local w=$1
	cat >"$w/Dockerfile" <<'EOF'
FROM localbusybox
COPY hello.sh /hello.sh
COPY data.txt /data.txt
RUN echo built-by-run > /from-run.txt
# The whole context, so tests can look at modes, the symlink and the subdir.
COPY . /ctx/
CMD ["/hello.sh"]
EOF
	printf '#!/bin/sh\necho hello from demo\n' >"$w/hello.sh"
	printf 'demo data v1\n' >"$w/data.txt"
	ln -s data.txt "$w/link-to-data"
	mkdir -p "$w/sub/deeper"
	printf 'nested file\n' >"$w/sub/nested.txt"
	printf 'deeper file\n' >"$w/sub/deeper/deep.txt"
	chmod 0644 "$w/Dockerfile" "$w/data.txt" "$w/sub/nested.txt" "$w/sub/deeper/deep.txt"
	chmod 0755 "$w/hello.sh"
	fixture_commit "$w" 1704067200 "demo: Dockerfile, script, data, symlink, subdir"
	fixture_tag "$w" 1704067200 v1 "demo v1"
	printf 'demo data main\n' >"$w/data.txt"
	fixture_commit "$w" 1704153600 "demo: data for main"
}

fixture_failing() {
	local w=$1
	cat >"$w/Dockerfile" <<'EOF'
FROM localbusybox
RUN echo dbuild-expected-failure >&2 && exit 3
EOF
	fixture_commit "$w" 1704067200 "failing: a RUN that exits 3"
}

# nested: no Dockerfile at the root; build it as nested.git#main:app.
fixture_nested() {
	local w=$1
	mkdir -p "$w/app"
	printf 'The Dockerfile is in app/: build with #main:app\n' >"$w/README.md"
	cat >"$w/app/Dockerfile" <<'EOF'
FROM localbusybox
COPY greeting.txt /greeting.txt
RUN echo built-from-app > /from-run.txt
EOF
	printf 'hello from app/\n' >"$w/app/greeting.txt"
	chmod 0644 "$w/README.md" "$w/app/Dockerfile" "$w/app/greeting.txt"
	fixture_commit "$w" 1704067200 "nested: Dockerfile under app/"
}

# empty: nothing is committed; the bare clone has an unborn main.
fixture_empty() { :; }

# attrs: .gitattributes and files the attributes convert on checkout; two blobs are stored
# with CRLF (as if committed before the attributes existed) by writing them unfiltered.
fixture_attrs() {
	local w=$1 f blob
	printf 'FROM localbusybox\nCOPY . /ctx/\n' >"$w/Dockerfile"
	mkdir -p "$w/auto" "$w/sub/deeper"
	printf 'stored\r\nwith crlf\nand a lone lf\n' >"$w/mixed.txt"
	printf 'auto\r\nwith crlf\n' >"$w/auto/has-crlf.md"
	cat >"$w/.gitattributes" <<'EOF'
# Checkout conversions git applies on Linux (core.autocrlf unset).
*.txt text eol=crlf
*.sh text eol=lf
auto/* text=auto eol=crlf
ident.c ident
*.bin binary
*.dat filter=lfs diff=lfs merge=lfs -text
plain.text text
EOF
	printf 'line one\nline two\n' >"$w/crlf.txt"
	printf '#!/bin/sh\necho lf\n' >"$w/run.sh"
	printf 'auto text\nconverted\n' >"$w/auto/text.md"
	printf 'nul\0inside\nnot converted\n' >"$w/auto/binary.md"
	# shellcheck disable=SC2016 # $Id$ is the literal keyword git's ident expands
	printf '/* $Id$ */\n/* $Id: old expansion $ */\n/* $Id: two words here $ */\nint x;\n' >"$w/ident.c"
	printf 'bin\nary\n' >"$w/data.bin"
	printf 'version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n' >"$w/big.dat"
	printf 'native\neol\n' >"$w/plain.text"
	printf '*.txt -text\n' >"$w/sub/.gitattributes"
	printf 'raw\nlf\n' >"$w/sub/raw.txt"
	printf 'deeper\nraw\n' >"$w/sub/deeper/also.txt"
	chmod 0755 "$w/run.sh"
	fixture_git -C "$w" add -A
	for f in mixed.txt auto/has-crlf.md; do
		blob=$(fixture_git -C "$w" hash-object -w --no-filters "$f")
		fixture_git -C "$w" update-index --cacheinfo "100644,$blob,$f"
	done
	FIXTURE_DATE="1704153600 +0000" fixture_git -C "$w" -c core.fileMode=true commit -q --no-verify \
		-m "attrs: .gitattributes with checkout conversions"
}

# subdep: the submodule; super pins its first commit, which no branch points to.
fixture_subdep() {
	local w=$1
	printf 'dep v1\n' >"$w/dep.txt"
	fixture_commit "$w" 1704067200 "dep v1"
	printf 'dep v2\n' >"$w/dep.txt"
	fixture_commit "$w" 1704153600 "dep v2"
}

# submodule_link WORKTREE PATH URL COMMIT: record a submodule without cloning it.
submodule_link() {
	local w=$1 path=$2 url=$3 commit=$4
	# An empty directory is an unpopulated submodule: `git add -A` keeps the gitlink.
	mkdir -p "$w/$path"
	fixture_git -C "$w" config -f .gitmodules "submodule.$path.path" "$path"
	fixture_git -C "$w" config -f .gitmodules "submodule.$path.url" "$url"
	fixture_git -C "$w" update-index --add --cacheinfo "160000,$commit,$path"
}

# super: built after subdep (FIXTURES order), whose first commit it pins.
fixture_super() {
	local w=$1 dep
	dep=$(git --git-dir="$GIT_ROOT/subdep.git" rev-parse refs/heads/main~1)
	printf 'FROM localbusybox\nCOPY lib/dep/dep.txt /dep.txt\n' >"$w/Dockerfile"
	submodule_link "$w" lib/dep ../subdep.git "$dep"
	fixture_commit "$w" 1704067200 "super: submodule lib/dep at dep v1 (not a branch tip)"
}

fixture_badsub() {
	local w=$1
	printf 'FROM localbusybox\n' >"$w/Dockerfile"
	submodule_link "$w" missing ../no-such-repo.git 1111111111111111111111111111111111111111
	fixture_commit "$w" 1704067200 "badsub: a submodule whose repository does not exist"
}

# A digest of the fixture code: when it changes, every fixture is rebuilt.
fixtures_stamp() {
	{
		printf '%s\n' "${FIXTURES[@]}"
		declare -f fixture_git fixture_commit fixture_tag configure_fixture_repo submodule_link
		local f
		for f in "${FIXTURES[@]}"; do declare -f "fixture_$f"; done
	} | sha256sum | cut -d' ' -f1
}

configure_fixture_repo() {
	local bare=$1
	git --git-dir="$bare" config uploadpack.allowAnySHA1InWant true
	git --git-dir="$bare" config uploadpack.allowReachableSHA1InWant true
	git --git-dir="$bare" config uploadpack.allowTipSHA1InWant true
	git --git-dir="$bare" config daemon.uploadarch true
	git --git-dir="$bare" config http.receivepack false
	git --git-dir="$bare" config gc.auto 0
	git --git-dir="$bare" remote remove origin 2>/dev/null || true
	touch "$bare/git-daemon-export-ok"
}

build_fixture() {
	local name=$1 tmp
	tmp=$(mktemp -d "$STATE/tmp/fixture-$name.XXXXXX")
	mkdir "$tmp/w"
	fixture_git init -q -b main "$tmp/w"
	"fixture_$name" "$tmp/w"
	fixture_git clone -q --bare --no-local "$tmp/w" "$tmp/$name.git"
	fixture_git --git-dir="$tmp/$name.git" symbolic-ref HEAD refs/heads/main
	configure_fixture_repo "$tmp/$name.git"
	rm -rf "$GIT_ROOT/$name.git"
	mv "$tmp/$name.git" "$GIT_ROOT/$name.git"
	rm -rf "$tmp"
	log "git: fixture $name.git built (main $(git --git-dir="$GIT_ROOT/$name.git" rev-parse -q --verify refs/heads/main || echo unborn))"
}

ensure_fixtures() {
	mkdir -p "$GIT_ROOT"
	local stamp old="" name
	stamp=$(fixtures_stamp)
	[[ -r $GIT_ROOT/.fixtures-stamp ]] && old=$(cat "$GIT_ROOT/.fixtures-stamp")
	for name in "${FIXTURES[@]}"; do
		if [[ $stamp != "$old" ]] ||
			{ ! git --git-dir="$GIT_ROOT/$name.git" rev-parse -q --verify refs/heads/main >/dev/null 2>&1 &&
				! [[ $name == empty && -f $GIT_ROOT/$name.git/HEAD ]]; }; then
			build_fixture "$name"
		fi
	done
	printf '%s\n' "$stamp" >"$GIT_ROOT/.fixtures-stamp"
}

# -------------------------------------------------------------- git daemon --
git_daemon_ok() {
	timeout 5 git ls-remote "git://$GIT_HOST:$GIT_PORT/demo.git" HEAD >/dev/null 2>&1
}

ensure_git_daemon() {
	local pid
	if git_daemon_ok; then
		log "git daemon: git://$GIT_HOST:$GIT_PORT answers"
		return 0
	fi
	pid=$(our_pid git-daemon "--base-path=$GIT_ROOT")
	if [[ -n $pid ]]; then
		wait_until 3 git_daemon_ok && return 0
		stop_pid git-daemon "$pid"
	fi
	log "git daemon: starting on $GIT_HOST:$GIT_PORT"
	# git-daemon itself, not `git daemon` (whose pid would be a wrapper that
	# leaves the daemon running when it is killed).
	start_bg git-daemon "$(git --exec-path)/git-daemon" --verbose --informative-errors --reuseaddr --export-all \
		--enable=upload-archive --base-path="$GIT_ROOT" --listen="$GIT_HOST" --port="$GIT_PORT" "$GIT_ROOT"
	pid=$(read_pidfile "$RUN_DIR/git-daemon.pid")
	local deadline=$((SECONDS + 20))
	until git_daemon_ok; do
		pid_alive "$pid" || fail_with_log git-daemon "git daemon exited during startup (port $GIT_PORT in use?)"
		((SECONDS < deadline)) || fail_with_log git-daemon "git daemon did not answer within 20s"
		sleep 0.2
	done
	log "git daemon: up (pid $pid)"
}

# ---------------------------------------------------------- git smart HTTP --
# scripts/testbed/git_http.py runs `git http-backend` as CGI:
#   /NAME.git/...          anonymous (read only)
#   /private/NAME.git/...  HTTP basic auth as TEST_USER / TEST_PASSWORD
python_bin() {
	if [[ -x /usr/bin/python3 ]]; then echo /usr/bin/python3; else command -v python3; fi
}

git_http_ok() {
	local url="http://$GIT_HOST:$GIT_HTTP_PORT"
	[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$url/demo.git/info/refs?service=git-upload-pack" 2>/dev/null) == 200 ]] &&
		[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$url/private/demo.git/info/refs?service=git-upload-pack" 2>/dev/null) == 401 ]] &&
		[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -u "$TEST_USER:$TEST_PASSWORD" "$url/private/demo.git/info/refs?service=git-upload-pack" 2>/dev/null) == 200 ]]
}

ensure_git_http() {
	local pid script=$HELPER_DIR/git_http.py
	pid=$(our_pid git-http "testbed/git_http.py")
	# Restart ours if the server code changed since it started.
	if [[ -n $pid && $script -nt $RUN_DIR/git-http.pid ]]; then
		log "git http: $script changed; restarting"
		stop_pid git-http "$pid"
		pid=""
	fi
	if git_http_ok; then
		log "git http: http://$GIT_HOST:$GIT_HTTP_PORT answers"
		return 0
	fi
	if [[ -n $pid ]]; then
		wait_until 3 git_http_ok && return 0
		stop_pid git-http "$pid"
	fi
	log "git http: starting on $GIT_HOST:$GIT_HTTP_PORT"
	DBUILD_GIT_HTTP_USER=$TEST_USER DBUILD_GIT_HTTP_PASSWORD=$TEST_PASSWORD \
		start_bg git-http "$(python_bin)" "$script" --listen "$GIT_HOST" --port "$GIT_HTTP_PORT" --root "$GIT_ROOT"
	pid=$(read_pidfile "$RUN_DIR/git-http.pid")
	local deadline=$((SECONDS + 20))
	until git_http_ok; do
		pid_alive "$pid" || fail_with_log git-http "git http server exited during startup (port $GIT_HTTP_PORT in use?)"
		((SECONDS < deadline)) || fail_with_log git-http "git http server did not answer within 20s"
		sleep 0.2
	done
	log "git http: up (pid $pid)"
}

# -------------------------------------------------------- git smart HTTPS --
# socat terminates TLS on 127.0.0.1:$GIT_HTTPS_PORT and forwards to the smart HTTP server,
# with a server certificate for 127.0.0.1 signed by a test CA generated here
# ($TLS_DIR/ca.pem, exported as DBUILD_TEST_GIT_CA_FILE).
TLS_DIR=$STATE/tls

git_https_ok() {
	[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$TLS_DIR/ca.pem" \
		"https://$GIT_HOST:$GIT_HTTPS_PORT/demo.git/info/refs?service=git-upload-pack" 2>/dev/null) == 200 ]]
}

ensure_git_https() {
	local pid
	mkdir -p "$TLS_DIR"
	if [[ ! -s $TLS_DIR/server.pem ]]; then
		log "git https: generating a test CA and a certificate for $GIT_HOST"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
			-subj "/CN=dbuild test bed CA" -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" 2>/dev/null
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-subj "/CN=$GIT_HOST" -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" 2>/dev/null
		printf 'subjectAltName=IP:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$GIT_HOST" >"$TLS_DIR/ext.cnf"
		openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
			-CAcreateserial -days 3650 -extfile "$TLS_DIR/ext.cnf" -out "$TLS_DIR/server.crt" 2>/dev/null
		cat "$TLS_DIR/server.crt" "$TLS_DIR/server.key" >"$TLS_DIR/server.pem.tmp"
		mv "$TLS_DIR/server.pem.tmp" "$TLS_DIR/server.pem"
	fi
	if git_https_ok; then
		log "git https: https://$GIT_HOST:$GIT_HTTPS_PORT answers"
		return 0
	fi
	pid=$(our_pid git-https "$TLS_DIR/server.pem")
	if [[ -n $pid ]]; then
		wait_until 3 git_https_ok && return 0
		stop_pid git-https "$pid"
	fi
	log "git https: starting socat on $GIT_HOST:$GIT_HTTPS_PORT"
	start_bg git-https socat \
		"OPENSSL-LISTEN:$GIT_HTTPS_PORT,bind=$GIT_HOST,reuseaddr,fork,cert=$TLS_DIR/server.pem,verify=0" \
		"TCP:$GIT_HOST:$GIT_HTTP_PORT"
	pid=$(read_pidfile "$RUN_DIR/git-https.pid")
	local deadline=$((SECONDS + 20))
	until git_https_ok; do
		pid_alive "$pid" || fail_with_log git-https "socat exited during startup (port $GIT_HTTPS_PORT in use?)"
		((SECONDS < deadline)) || fail_with_log git-https "git https did not answer within 20s"
		sleep 0.2
	done
	log "git https: up (pid $pid)"
}

# ---------------------------------------------------------------- git ssh --
# sshd on 127.0.0.1:$GIT_SSH_PORT with a generated host key, accepting only the generated
# client key (for root) and GIT_PROTOCOL (protocol v2). Repositories are addressed by their
# path: ssh://root@127.0.0.1:$GIT_SSH_PORT$GIT_ROOT/demo.git. Clients use $SSH_DIR/ssh_command
# (exported as DBUILD_TEST_SSH_COMMAND), which names the key and a known_hosts file.
SSH_DIR=$STATE/ssh

git_ssh_ok() {
	[[ -s $SSH_DIR/ssh_command ]] || return 1
	GIT_SSH_COMMAND=$(cat "$SSH_DIR/ssh_command") timeout 5 git ls-remote \
		"ssh://root@$GIT_HOST:$GIT_SSH_PORT$GIT_ROOT/demo.git" HEAD >/dev/null 2>&1
}

ensure_git_ssh() {
	local pid changed=0
	mkdir -p "$SSH_DIR" /run/sshd
	chmod 0700 "$SSH_DIR"
	if [[ ! -s $SSH_DIR/host_ed25519 ]]; then
		ssh-keygen -q -t ed25519 -N '' -C dbuild-testbed-host -f "$SSH_DIR/host_ed25519"
		changed=1
	fi
	if [[ ! -s $SSH_DIR/client_ed25519 ]]; then
		ssh-keygen -q -t ed25519 -N '' -C dbuild-testbed-client -f "$SSH_DIR/client_ed25519"
		changed=1
	fi
	cp "$SSH_DIR/client_ed25519.pub" "$SSH_DIR/authorized_keys"
	printf '[%s]:%s %s\n' "$GIT_HOST" "$GIT_SSH_PORT" "$(cut -d' ' -f1,2 "$SSH_DIR/host_ed25519.pub")" >"$SSH_DIR/known_hosts"
	printf 'ssh -i %s -o IdentitiesOnly=yes -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes\n' \
		"$SSH_DIR/client_ed25519" "$SSH_DIR/known_hosts" >"$SSH_DIR/ssh_command"
	write_if_changed "$SSH_DIR/sshd_config" <<EOF && changed=1
# Written by dbuild scripts/testbed.sh.
ListenAddress $GIT_HOST
Port $GIT_SSH_PORT
HostKey $SSH_DIR/host_ed25519
AuthorizedKeysFile $SSH_DIR/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AcceptEnv GIT_PROTOCOL
PidFile none
EOF
	pid=$(our_pid git-ssh "$SSH_DIR/sshd_config")
	if [[ -n $pid ]] && ((changed)); then
		log "git ssh: configuration changed; restarting"
		stop_pid git-ssh "$pid"
		pid=""
	fi
	if git_ssh_ok; then
		log "git ssh: ssh://$GIT_HOST:$GIT_SSH_PORT answers"
		return 0
	fi
	if [[ -n $pid ]]; then
		wait_until 3 git_ssh_ok && return 0
		stop_pid git-ssh "$pid"
	fi
	log "git ssh: starting sshd on $GIT_HOST:$GIT_SSH_PORT"
	start_bg git-ssh /usr/sbin/sshd -D -e -f "$SSH_DIR/sshd_config"
	pid=$(read_pidfile "$RUN_DIR/git-ssh.pid")
	local deadline=$((SECONDS + 20))
	until git_ssh_ok; do
		pid_alive "$pid" || fail_with_log git-ssh "sshd exited during startup (port $GIT_SSH_PORT in use?)"
		((SECONDS < deadline)) || fail_with_log git-ssh "sshd did not answer within 20s"
		sleep 0.2
	done
	log "git ssh: up (pid $pid)"
}

# ---------------------------------------------------------- podman service --
podman_ping() {
	[[ -S $PODMAN_SOCK ]] &&
		[[ $(curl -sS --max-time 3 --unix-socket "$PODMAN_SOCK" http://localhost/_ping 2>/dev/null) == OK ]]
}

# Podman reads the registries configuration from here (not /etc), so the
# test registry on 127.0.0.1:5000 is plain HTTP for it as it is for dockerd,
# and short names are never looked up on the internet.
podman_registries_conf() {
	cat <<EOF
# Written by dbuild scripts/testbed.sh.
unqualified-search-registries = []
short-name-mode = "permissive"

[[registry]]
location = "$REGISTRY_ADDR"
insecure = true
EOF
}

# As root, podman gives every container RLIMIT_NOFILE 1048576 and RLIMIT_NPROC
# above what it keeps for itself (32768); without CAP_SYS_RESOURCE (as in this
# sandbox) runc then fails with "error setting rlimit type 7/6: operation not
# permitted". Default limits that fit under the hard ones avoid that.
podman_containers_conf() {
	local nofile nproc
	nofile=$(ulimit -Hn)
	nproc=$(ulimit -Hu)
	[[ $nofile =~ ^[0-9]+$ ]] && ((nofile < 1048576)) || nofile=1048576
	[[ $nproc =~ ^[0-9]+$ ]] && ((nproc < 32768)) || nproc=32768
	cat <<EOF
# Written by dbuild scripts/testbed.sh.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
EOF
}

ensure_podman() {
	local pid dir=$STATE/podman changed=0
	mkdir -p "$dir"
	podman_registries_conf | write_if_changed "$dir/registries.conf" && changed=1
	podman_containers_conf | write_if_changed "$dir/containers.conf" && changed=1
	pid=$(our_pid podman "unix://$PODMAN_SOCK")
	if [[ -n $pid ]] && ((changed)); then
		log "podman: configuration changed; restarting"
		stop_pid podman "$pid"
	fi
	if podman_ping; then
		log "podman: $PODMAN_SOCK answers"
	else
		pid=$(our_pid podman "unix://$PODMAN_SOCK")
		if [[ -n $pid ]]; then
			if ! wait_until 5 podman_ping; then
				stop_pid podman "$pid"
				pid=""
			fi
		fi
		if [[ -z $pid ]]; then
			rm -f "$PODMAN_SOCK"
			log "podman: starting API service on $PODMAN_SOCK"
			CONTAINERS_REGISTRIES_CONF=$dir/registries.conf CONTAINERS_CONF=$dir/containers.conf \
				start_bg podman podman --log-level=info system service --time=0 "unix://$PODMAN_SOCK"
			pid=$(read_pidfile "$RUN_DIR/podman.pid")
			local deadline=$((SECONDS + 60))
			until podman_ping; do
				pid_alive "$pid" || fail_with_log podman "podman system service exited during startup"
				((SECONDS < deadline)) || fail_with_log podman "podman service did not answer within 60s"
				sleep 0.3
			done
			log "podman: up (pid $pid)"
		fi
	fi
	if image_exists "$PODMAN_SOCK" "$BASE_IMAGE"; then
		log "podman: image $BASE_IMAGE present"
	else
		log "podman: importing $BASE_IMAGE"
		import_base_image "$PODMAN_SOCK"
		image_exists "$PODMAN_SOCK" "$BASE_IMAGE" || die "podman: image $BASE_IMAGE still absent after import"
	fi
}

# --------------------------------------------------------------------- env --
print_env() {
	local kv
	for kv in \
		DBUILD_TESTBED=1 \
		"DOCKER_HOST=unix://$DOCKER_SOCK" \
		"DBUILD_TEST_BASE_IMAGE=$BASE_IMAGE" \
		"DBUILD_TEST_GIT=git://$GIT_HOST:$GIT_PORT" \
		"DBUILD_TEST_GIT_HTTP=http://$GIT_HOST:$GIT_HTTP_PORT" \
		"DBUILD_TEST_GIT_HTTP_PRIVATE=http://$GIT_HOST:$GIT_HTTP_PORT/private" \
		"DBUILD_TEST_GIT_HTTP_USER=$TEST_USER" \
		"DBUILD_TEST_GIT_HTTP_PASSWORD=$TEST_PASSWORD" \
		"DBUILD_TEST_GIT_HTTPS=https://$GIT_HOST:$GIT_HTTPS_PORT" \
		"DBUILD_TEST_GIT_CA_FILE=$STATE/tls/ca.pem" \
		"DBUILD_TEST_GIT_SSH=ssh://root@$GIT_HOST:$GIT_SSH_PORT$GIT_ROOT" \
		"DBUILD_TEST_SSH_COMMAND=$(cat "$STATE/ssh/ssh_command" 2>/dev/null || true)" \
		"DBUILD_TEST_REGISTRY=$REGISTRY_ADDR" \
		"DBUILD_TEST_REGISTRY_USER=$TEST_USER" \
		"DBUILD_TEST_REGISTRY_PASSWORD=$TEST_PASSWORD"; do
		printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
	done
	if [[ $WANT_PODMAN == 1 ]]; then
		printf 'export %s=%q\n' DBUILD_TEST_PODMAN_HOST "unix://$PODMAN_SOCK"
	fi
}

# -------------------------------------------------------------- commands --
prepare_state() {
	mkdir -p "$STATE" "$LOG_DIR" "$RUN_DIR" "$STATE/tmp" "$GIT_ROOT"
	# One `up`/`down` at a time. fd 9 is closed in everything start_bg starts.
	exec 9>"$STATE/lock"
	flock 9
}

cmd_up() {
	local t0=$SECONDS
	[[ $(id -u) == 0 ]] || die "must run as root (installs packages, starts dockerd)"
	ensure_packages
	prepare_state
	ensure_dockerd
	ensure_base_image
	ensure_registry
	ensure_fixtures
	ensure_git_daemon
	ensure_git_http
	ensure_git_https
	ensure_git_ssh
	if [[ $WANT_PODMAN == 1 ]]; then
		ensure_podman
	fi
	print_env >"$STATE/env.tmp"
	mv "$STATE/env.tmp" "$STATE/env"
	log "all up in $((SECONDS - t0))s; environment: $STATE/env (or: eval \"\$(bash scripts/testbed.sh env)\")"
}

cmd_status() {
	local bad=0
	# check NAME DETAIL CMD...: one line per service.
	check() {
		local name=$1 detail=$2
		shift 2
		if "$@"; then
			printf '%-11s up    %s\n' "$name" "$detail"
		else
			printf '%-11s DOWN  %s\n' "$name" "$detail"
			bad=1
		fi
	}
	check dockerd "$DOCKER_SOCK" docker_ping
	check base-image "$BASE_IMAGE in dockerd" image_exists "$DOCKER_SOCK" "$BASE_IMAGE"
	check registry "http://$REGISTRY_ADDR (htpasswd, user $TEST_USER)" registry_ok
	check git-daemon "git://$GIT_HOST:$GIT_PORT/{$(IFS=,; echo "${FIXTURES[*]}")}.git" git_daemon_ok
	check git-http "http://$GIT_HOST:$GIT_HTTP_PORT (/private: basic auth)" git_http_ok
	check git-https "https://$GIT_HOST:$GIT_HTTPS_PORT (test CA $TLS_DIR/ca.pem)" git_https_ok
	check git-ssh "ssh://root@$GIT_HOST:$GIT_SSH_PORT$GIT_ROOT" git_ssh_ok
	if [[ $WANT_PODMAN == 1 ]]; then
		check podman "unix://$PODMAN_SOCK" podman_ping
		check podman-image "$BASE_IMAGE in podman" image_exists "$PODMAN_SOCK" "$BASE_IMAGE"
	fi
	return "$bad"
}

cmd_down() {
	prepare_state
	local name pattern pid
	for name in podman git-ssh git-https git-http git-daemon registry; do
		case $name in
		podman) pattern="unix://$PODMAN_SOCK" ;;
		git-ssh) pattern="$STATE/ssh/sshd_config" ;;
		git-https) pattern="$STATE/tls/server.pem" ;;
		git-http) pattern="testbed/git_http.py" ;;
		git-daemon) pattern="--base-path=$GIT_ROOT" ;;
		registry) pattern="$STATE/registry/config.yml" ;;
		esac
		pid=$(our_pid "$name" "$pattern")
		if [[ -n $pid ]]; then stop_pid "$name" "$pid"; else log "$name: not running (or not started by this script)"; fi
		rm -f "$RUN_DIR/$name.pid"
	done
	rm -f "$PODMAN_SOCK"
	# dockerd: only the one this script started, identified by pid and name.
	pid=$(read_pidfile "$RUN_DIR/dockerd.started-by-testbed")
	if [[ -n $pid ]] && is_live_dockerd "$pid"; then
		stop_pid dockerd "$pid"
		local i
		for ((i = 0; i < 100; i++)); do
			pid_alive "$pid" || break
			sleep 0.2
		done
	else
		log "dockerd: not started by this script; leaving it alone"
	fi
	rm -f "$RUN_DIR/dockerd.started-by-testbed" "$RUN_DIR/dockerd.pid"
}

main() {
	case ${1:-up} in
	up) cmd_up ;;
	down) cmd_down ;;
	status) cmd_status ;;
	env) print_env ;;
	-h | --help | help) sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
	*) die "unknown command '$1' (up, down, status, env)" ;;
	esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
