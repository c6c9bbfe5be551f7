// Command client is the host-call test guest: it makes the request named by
// its arguments through the flotilla host module and prints the outcome.
//
//	client get URL            -> status=200 len=N sum=SHA256 hdr=X-Test body=...
//	client post URL BODY
//	client publish SUBJECT DATA
//
// Failures print err=<code> (the host's ABI code) and exit 3.
package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/flotilla-edge/flotilla/wasmrt/guest/flotillahttp"
)

func main() {
	var err error
	switch os.Args[1] {
	case "get":
		err = show(flotillahttp.Get(os.Args[2]))
	case "post":
		err = show(flotillahttp.Client.Post(os.Args[2], "text/plain", strings.NewReader(os.Args[3])))
	case "publish":
		err = flotillahttp.Publish(os.Args[2], []byte(os.Args[3]))
		if err == nil {
			fmt.Println("published")
		}
	default:
		err = fmt.Errorf("unknown action %q", os.Args[1])
	}
	if err != nil {
		var he *flotillahttp.Error
		if errors.As(err, &he) {
			fmt.Printf("err=%d\n", he.Code)
		} else {
			fmt.Printf("err=%v\n", err)
		}
		os.Exit(3)
	}
}

func show(resp *http.Response, err error) error {
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	body := string(b)
	if len(body) > 64 {
		body = body[:64]
	}
	fmt.Printf("status=%d len=%d sum=%x hdr=%s body=%s\n", resp.StatusCode, len(b), sha256.Sum256(b), resp.Header.Get("X-Test"), body)
	return nil
}
