package verify

import (
	"sync"
)

// unsignedObjects counts the objects read without a signature, when verify
// runs without --trust-key (with it, each is a problem where it is read).
// Objects are read from several goroutines.
type unsignedObjects struct {
	mu    sync.Mutex
	n     int
	first string
}

func (u *unsignedObjects) add(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n == 0 {
		u.first = key
	}
	u.n++
}

// report notes the unsigned objects, once for the archive: an archive
// written without --sign-key has every object unsigned.
func (u *unsignedObjects) report(v *verifier) {
	if u.n == 0 {
		return
	}
	v.note(Finding{Key: u.first}, "%d objects read are not signed (%s is one): they were written without --sign-key, and a reader given --trust-key would refuse them; verify with --trust-key to check every signature",
		u.n, u.first)
}
