package objstore_test

import (
	"testing"

	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/objstore/objstoretest"
)

func TestMemory(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		return objstore.NewMemory()
	})
}
