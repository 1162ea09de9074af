package run

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// tcpConnsTo counts established TCP connections whose remote end is addr,
// from any process of this network namespace (/proc/net/tcp), so that an
// out-of-process gateway's connections are counted too.
func tcpConnsTo(addr string) int {
	_, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	port, _ := strconv.Atoi(portStr)
	want := fmt.Sprintf(":%04X", port)
	n := 0
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local_address rem_address st ...; 01 is ESTABLISHED.
			if len(fields) > 3 && strings.HasSuffix(fields[2], want) && fields[3] == "01" {
				n++
			}
		}
		fh.Close()
	}
	return n
}
