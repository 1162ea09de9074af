// Package validate holds the tests that check the deployment artefacts in
// deploy/ and the Dockerfile: the Helm chart is rendered with the Helm
// library and every object is sent to a real API server (envtest) as a
// server-side dry run; the Chaos Mesh experiments are strictly decoded into
// the Chaos Mesh API types and run through their admission validation.
//
// It is a separate module so that Helm and Chaos Mesh stay out of the
// gateway's go.mod. Run it with
//
//	cd deploy/validate && KUBEBUILDER_ASSETS=$(../../hack/test-binaries.sh) go test ./...
package validate
