# Shared by demo.sh and deps.sh (sourced, not run).

# find_bin NAME prints the path of NAME on $PATH or in /usr/sbin, /usr/bin
# (mariadbd lives in /usr/sbin, which is often not on a user's $PATH).
find_bin() {
	local p dir
	if p="$(command -v "$1" 2>/dev/null)"; then
		echo "$p"
		return 0
	fi
	for dir in /usr/sbin /usr/bin; do
		if [[ -x "$dir/$1" ]]; then
			echo "$dir/$1"
			return 0
		fi
	done
	return 1
}
