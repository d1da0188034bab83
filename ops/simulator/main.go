// Command ceso-vcsim runs govmomi's simulator as a standalone ESXi host for ceso's tests.
//
// It serves simulator.ESX() with zero default VMs and adds, in front of the simulator's own
// SOAP handler, the behaviour of a real standalone host that the simulator lacks:
//
//   - CloneVM_Task is always answered with vmodl.fault.NotSupported (no vCenter, no clone);
//   - -free-license: the LicenseManager reports the free "vSphere 7 Hypervisor" edition and every
//     write method is answered with vim.fault.RestrictedVersion, before any task exists — except for
//     requests carrying the header X-Ceso-Local-Shell (ceso's ESXi shell emulators, standing in for
//     vim-cmd, which talks to hostd locally and is not restricted by the license);
//   - -fail-methods M1,M2: these methods are answered with vim.fault.SystemError (fault injection);
//   - -delay METHOD=ms,...: the simulator's own per-method delay (`*=ms` delays every method);
//   - -username U -password P: only this login is accepted (InvalidLogin otherwise);
//   - OVF import: a stream-optimized VMDK uploaded through an HttpNfcLease becomes a thin VMFS
//     disk on the datastore, a descriptor plus a sparse -flat.vmdk, as ESXi writes it (the
//     simulator's own NFC handler discards uploads); see keepNFCUploads.
//   - Changed Block Tracking (changeTrackingEnabled, changeIds, QueryChangedDiskAreas), emulated
//     in the section at the end of this file; -cbt-span caps the bytes one QueryChangedDiskAreas
//     answer covers.
//   - A guest that boots: after PowerOnVM_Task, a VM whose first disk carries a boot signature
//     (0x55 0xAA at byte 510, as a BIOS or a GPT's protective MBR needs) gets VMware Tools running
//     and a green heartbeat after -boot-ms, and with its first NIC connected an address leased
//     from 198.51.100.0/24; any other VM reports no Tools and a gray heartbeat forever, as a VM
//     with nothing to boot does on ESXi (the simulator alone reports no Tools for every VM).
//     Power off and guest shutdown take the guest's state away again. See guestEmulator.
//
// It prints exactly one line on stdout, the server URL ending in /sdk, and serves until
// SIGTERM/SIGINT, on which it stops and removes its datastore directory (under $TMPDIR).
//
// Built in GOPATH mode against Debian's golang-github-vmware-govmomi-dev 0.24.2; see build.sh.
package main

import (
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

const (
	restrictedMsg     = "Current license or ESXi version prohibits execution of the requested operation."
	notSupportedMsg   = "The operation is not supported on the object."
	systemErrorReason = "injected by ceso-vcsim -fail-methods"
	systemErrorMsg    = "A general system error occurred: " + systemErrorReason
)

// restrictedMethods are the SOAP methods a free-licensed ESXi host refuses. Reads, sessions,
// property collector, views and datastore searches are not listed and keep working.
var restrictedMethods = []string{
	// virtual machines
	"CreateVM_Task", "RegisterVM_Task", "ReconfigVM_Task",
	"PowerOnVM_Task", "PowerOffVM_Task", "ResetVM_Task", "SuspendVM_Task",
	"ShutdownGuest", "RebootGuest", "StandbyGuest",
	"Destroy_Task", "UnregisterVM", "Rename_Task", "RelocateVM_Task", "MigrateVM_Task",
	"UpgradeVM_Task", "MarkAsTemplate", "MarkAsVirtualMachine", "AnswerVM",
	"MountToolsInstaller", "UnmountToolsInstaller", "UpgradeTools_Task",
	"ConsolidateVMDisks_Task", "ExportVm", "SetScreenResolution", "RefreshStorageInfo",
	// changed block tracking (the vStorage APIs are not in the free edition)
	"QueryChangedDiskAreas",
	// snapshots
	"CreateSnapshot_Task", "CreateSnapshotEx_Task", "RemoveSnapshot_Task", "RevertToSnapshot_Task",
	"RevertToCurrentSnapshot_Task", "RemoveAllSnapshots_Task", "RenameSnapshot",
	// virtual disks
	"CreateVirtualDisk_Task", "CopyVirtualDisk_Task", "MoveVirtualDisk_Task", "DeleteVirtualDisk_Task",
	"ExtendVirtualDisk_Task", "InflateVirtualDisk_Task", "EagerZeroVirtualDisk_Task",
	"ShrinkVirtualDisk_Task", "ZeroFillVirtualDisk_Task", "DefragmentVirtualDisk_Task",
	"SetVirtualDiskUuid",
	// datastore files
	"MakeDirectory", "DeleteDatastoreFile_Task", "MoveDatastoreFile_Task", "CopyDatastoreFile_Task",
	"CreateDirectory", "DeleteDirectory", "DeleteFile",
	// inventory, pools, vApps, OVF import
	"CreateFolder", "MoveIntoFolder_Task", "UnregisterAndDestroy_Task", "CreateResourcePool",
	"UpdateConfig", "MoveIntoResourcePool", "CreateVApp", "ImportVApp",
	// host, datastores, networking
	"EnterMaintenanceMode_Task", "ExitMaintenanceMode_Task", "RebootHost_Task", "ShutdownHost_Task",
	"CreateLocalDatastore", "CreateNasDatastore", "CreateVmfsDatastore", "RemoveDatastore",
	"RenameDatastore", "AddPortGroup", "RemovePortGroup", "UpdatePortGroup", "AddVirtualSwitch",
	"RemoveVirtualSwitch", "UpdateVirtualSwitch", "UpdateOptions", "SetCustomValue",
}

// freeLicense is what a free-licensed host reports from its LicenseManager.
var freeLicense = types.LicenseManagerLicenseInfo{
	LicenseKey: "00000-00000-00000-00000-00000",
	EditionKey: "esx.hypervisor.cpuPackageCoreLimited",
	Name:       "vSphere 7 Hypervisor",
	Total:      0,
	CostUnit:   "cpuPackage",
	Properties: []types.KeyAnyValue{
		{Key: "ProductName", Value: "VMware ESX Server"},
		{Key: "ProductVersion", Value: "7.0"},
	},
}

// The three types below are copies of the simulator's unexported soapEnvelope, soapFault and
// faultDetail (simulator/simulator.go, used by (*Service).ServeSDK), so that our faults are
// byte-for-byte shaped like the simulator's own: <detail><XFault xmlns="urn:vim25" xsi:type="X">.
type soapEnvelope struct {
	XMLName xml.Name    `xml:"soapenv:Envelope"`
	Enc     string      `xml:"xmlns:soapenc,attr"`
	Env     string      `xml:"xmlns:soapenv,attr"`
	XSD     string      `xml:"xmlns:xsd,attr"`
	XSI     string      `xml:"xmlns:xsi,attr"`
	Body    interface{} `xml:"soapenv:Body"`
}

type faultDetail struct {
	Fault types.AnyType
}

type soapFault struct {
	XMLName xml.Name `xml:"soapenv:Fault"`
	Code    string   `xml:"faultcode"`
	String  string   `xml:"faultstring"`
	Detail  struct {
		Fault *faultDetail
	} `xml:"detail"`
}

// MarshalXML renames the start element from "Fault" to "${Type}Fault", as the simulator does.
func (d *faultDetail) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	kind := reflect.TypeOf(d.Fault).Elem().Name()
	start.Name.Local = kind + "Fault"
	start.Attr = append(start.Attr,
		xml.Attr{Name: xml.Name{Local: "xmlns"}, Value: "urn:" + vim25.Namespace},
		xml.Attr{Name: xml.Name{Local: "xsi:type"}, Value: kind})
	return e.EncodeElement(d.Fault, start)
}

// writeFault answers a SOAP call with fault f, the way (*Service).ServeSDK does.
func writeFault(w http.ResponseWriter, f *soap.Fault) {
	body := struct{ Fault *soapFault }{&soapFault{
		Code:   f.Code,
		String: f.String,
		Detail: struct{ Fault *faultDetail }{&faultDetail{f.Detail.Fault}},
	}}
	var out bytes.Buffer
	fmt.Fprint(&out, xml.Header)
	e := xml.NewEncoder(&out)
	err := e.Encode(&soapEnvelope{
		Enc:  "http://schemas.xmlsoap.org/soap/encoding/",
		Env:  "http://schemas.xmlsoap.org/soap/envelope/",
		XSD:  "http://www.w3.org/2001/XMLSchema",
		XSI:  "http://www.w3.org/2001/XMLSchema-instance",
		Body: body,
	})
	if err == nil {
		err = e.Flush()
	}
	if err != nil {
		log.Printf("encoding fault: %s", err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write(out.Bytes())
}

// soapMethod returns the local name of the first element inside the SOAP Body, or "".
func soapMethod(body []byte) string {
	d := xml.NewDecoder(bytes.NewReader(body))
	inBody := false
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok {
			if inBody {
				return se.Name.Local
			}
			inBody = se.Name.Local == "Body"
		}
	}
}

// rule is one canned fault answer.
type rule struct {
	msg   string
	fault types.BaseMethodFault
	// needSession: only answer when the call carries a session cookie, so that anonymous calls
	// still get the simulator's NotAuthenticated, as on ESXi (the cookie is not validated).
	needSession bool
	// license: a free-license refusal, which local shell tools (X-Ceso-Local-Shell) are exempt from.
	license bool
}

// localShellHeader marks requests from ceso's ESXi shell emulators (tests/support/esxi_shell).
const localShellHeader = "X-Ceso-Local-Shell"

type interceptor struct {
	next     http.Handler
	sdkPaths map[string]bool
	rules    map[string]rule
	cbt      *cbtEmulator
	guest    *guestEmulator
}

// add registers a rule for method; the first rule added for a method wins.
func (h *interceptor) add(method string, r rule) {
	if _, dup := h.rules[method]; !dup {
		h.rules[method] = r
	}
}

func (h *interceptor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !h.sdkPaths[r.URL.Path] {
		h.next.ServeHTTP(w, r)
		return
	}
	body, err := ioutil.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	name := soapMethod(body)
	if rl, ok := h.rules[name]; ok && !(rl.license && r.Header.Get(localShellHeader) != "") {
		if _, err := r.Cookie(soap.SessionCookieName); err == nil || !rl.needSession {
			writeFault(w, simulator.Fault(rl.msg, rl.fault))
			return
		}
	}
	r.Body = ioutil.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	if h.cbt == nil || !h.cbt.serve(w, r, name, body, h.next) {
		h.next.ServeHTTP(w, r)
	}
	if h.guest != nil {
		h.guest.after(r, name, body)
	}
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func parseDelays(s string, cfg *simulator.DelayConfig) error {
	for _, item := range splitList(s) {
		eq := strings.IndexByte(item, '=')
		if eq <= 0 {
			return fmt.Errorf("-delay: want METHOD=ms, got %q", item)
		}
		ms, err := strconv.Atoi(item[eq+1:])
		if err != nil || ms < 0 {
			return fmt.Errorf("-delay: bad milliseconds in %q", item)
		}
		if name := item[:eq]; name == "*" {
			cfg.Delay = ms
		} else {
			if cfg.MethodDelay == nil {
				cfg.MethodDelay = map[string]int{}
			}
			cfg.MethodDelay[name] = ms
		}
	}
	return nil
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (port 0 picks a free port)")
	useTLS := flag.Bool("tls", false, "serve https with the simulator's self-signed certificate")
	free := flag.Bool("free-license", false, "emulate a free-licensed ESXi (writes fail with RestrictedVersion)")
	failMethods := flag.String("fail-methods", "", "comma-separated SOAP methods answered with SystemError")
	delays := flag.String("delay", "", "comma-separated METHOD=ms delays; *=ms delays every method")
	username := flag.String("username", "", "accept only this user name (default: any non-empty user)")
	password := flag.String("password", "", "with -username: accept only this password")
	cbtSpan := flag.Int64("cbt-span", 1<<30, "bytes one QueryChangedDiskAreas answer covers at most")
	bootMs := flag.Int("boot-ms", 300, "milliseconds from power on to VMware Tools' first heartbeat of a bootable VM")
	flag.Parse()
	log.SetPrefix("ceso-vcsim: ")

	model := simulator.ESX()
	model.Machine = 0 // ESX() defaults to 2 VMs; 0 works in 0.24.2 (the VM loop is `i < m.Machine`)
	if err := parseDelays(*delays, &model.DelayConfig); err != nil {
		fmt.Fprintln(os.Stderr, "ceso-vcsim:", err)
		os.Exit(2)
	}
	if err := model.Create(); err != nil {
		fmt.Fprintln(os.Stderr, "ceso-vcsim: creating model:", err)
		model.Remove()
		os.Exit(1)
	}

	if *free {
		lm, ok := simulator.Map.Get(*model.ServiceContent.LicenseManager).(*simulator.LicenseManager)
		if !ok {
			model.Remove()
			log.Fatal("no LicenseManager in the ESX model")
		}
		lm.Licenses = []types.LicenseManagerLicenseInfo{freeLicense}
	}

	// From here on, a signal or a panic (e.g. the listen address is taken) still removes the
	// datastore directory.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer func() {
		if r := recover(); r != nil {
			model.Remove()
			panic(r)
		}
	}()

	model.Service.Listen = &url.URL{Host: *listen}
	if *username != "" {
		// The simulator's SessionManager checks logins against Listen.User when it is set.
		model.Service.Listen.User = url.UserPassword(*username, *password)
	}
	if *useTLS {
		model.Service.TLS = new(tls.Config)
	}
	srv := model.Service.NewServer()

	h := &interceptor{
		next:     srv.Config.Handler,
		sdkPaths: map[string]bool{vim25.Path: true, vim25.Path + "/vimService": true},
		rules:    map[string]rule{},
		cbt:      newCBTEmulator(*cbtSpan),
		guest:    &guestEmulator{boot: time.Duration(*bootMs) * time.Millisecond},
	}
	for _, m := range splitList(*failMethods) {
		h.add(m, rule{msg: systemErrorMsg, fault: &types.SystemError{Reason: systemErrorReason}})
	}
	h.add("CloneVM_Task", rule{msg: notSupportedMsg, fault: &types.NotSupported{}, needSession: true})
	if *free {
		for _, m := range restrictedMethods {
			h.add(m, rule{msg: restrictedMsg, fault: &types.RestrictedVersion{}, needSession: true, license: true})
		}
	}
	// NewServer starts serving before returning and offers no hook around its mux, so we swap the
	// handler right away. http.Server reads Handler per request; no client knows the (random)
	// port before the URL line below is printed, so no request can have been served yet.
	srv.Config.Handler = keepNFCUploads(h)

	u := *srv.URL
	u.User = nil // NewServer puts the default login (user:pass) into the URL
	fmt.Println(u.String())
	_ = os.Stdout.Sync()

	<-sig
	signal.Stop(sig)

	// Close waits for requests in flight; a WaitForUpdates long poll may never end, so bound it.
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		log.Print("requests still in flight after 3s; exiting anyway")
	}
	model.Remove()
}

// ---- OVF import: NFC uploads kept as ESXi keeps them ----------------------------------------
//
// ESXi receives each disk of an OVF import as a stream-optimized VMDK POSTed (or PUT) to the
// lease's device URL, and writes it as a VMFS disk: a text descriptor and a flat data file that
// is thin (only written grains take space). The simulator's ServeNFC finds the lease and the
// target file but copies the body to ioutil.Discard. keepNFCUploads answers those uploads
// itself, writing what ESXi would write; everything else (GETs, unknown leases) goes on to the
// simulator unchanged.

// simNfcLease is the simulator's own table of open leases (simulator.nfcLease, unexported):
// the lease id of an upload URL leads to the target file only through it.
//
//go:linkname simNfcLease github.com/vmware/govmomi/simulator.nfcLease
var simNfcLease sync.Map

const nfcPrefix = "/nfc/"

func keepNFCUploads(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method != http.MethodPut && r.Method != http.MethodPost) || !strings.HasPrefix(r.URL.Path, nfcPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		target, ok := nfcTarget(r.URL.Path)
		if !ok {
			next.ServeHTTP(w, r) // the simulator answers 404 for an unknown lease or device
			return
		}
		if err := writeVMFSDisk(target, r.Body); err != nil {
			log.Printf("nfc %s %s: %v", r.Method, target, err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		log.Printf("nfc %s %s: stored as a thin VMFS disk", r.Method, target)
		w.WriteHeader(http.StatusOK)
	})
}

// nfcTarget is the datastore file (the disk's descriptor) that /nfc/<lease>/<device> uploads to.
func nfcTarget(urlPath string) (string, bool) {
	parts := strings.Split(urlPath, "/")
	if len(parts) < 2 {
		return "", false
	}
	id, name := parts[len(parts)-2], parts[len(parts)-1]
	v, ok := simNfcLease.Load(types.ManagedObjectReference{Type: "HttpNfcLease", Value: id})
	if !ok {
		return "", false
	}
	lease, ok := v.(*simulator.HttpNfcLease)
	if !ok {
		return "", false
	}
	field := reflect.ValueOf(lease).Elem().FieldByName("files") // map[device name]local path
	if !field.IsValid() || field.Type() != reflect.TypeOf(map[string]string{}) {
		return "", false
	}
	files := *(*map[string]string)(unsafe.Pointer(field.UnsafeAddr()))
	target, ok := files[name]
	return target, ok && strings.HasSuffix(target, ".vmdk")
}

// writeVMFSDisk reads a stream-optimized VMDK from body and writes descriptor (the path given)
// and its -flat.vmdk beside it. Zero grains are skipped, so the flat file is sparse.
func writeVMFSDisk(descriptor string, body io.Reader) error {
	const sector = 512
	head := make([]byte, sector)
	if _, err := io.ReadFull(body, head); err != nil {
		return fmt.Errorf("reading the VMDK header: %v", err)
	}
	le := binary.LittleEndian
	if le.Uint32(head[0:]) != 0x564d444b || le.Uint32(head[8:])&(1<<16|1<<17) != 1<<16|1<<17 {
		return fmt.Errorf("not a stream-optimized VMDK")
	}
	capacity, grain, overhead := le.Uint64(head[12:]), le.Uint64(head[20:]), le.Uint64(head[64:])
	if grain == 0 || grain > 32768 || overhead < 1 {
		return fmt.Errorf("implausible VMDK header")
	}
	if _, err := io.CopyN(ioutil.Discard, body, int64((overhead-1)*sector)); err != nil {
		return fmt.Errorf("reading the VMDK header: %v", err)
	}
	flatName := strings.TrimSuffix(filepath.Base(descriptor), ".vmdk") + "-flat.vmdk"
	flat, err := os.OpenFile(filepath.Join(filepath.Dir(descriptor), flatName), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer flat.Close()
	marker := make([]byte, sector)
	for {
		if _, err := io.ReadFull(body, marker); err != nil {
			return fmt.Errorf("the VMDK ends before its end-of-stream marker: %v", err)
		}
		lba, size := le.Uint64(marker[0:]), le.Uint32(marker[8:])
		if size == 0 { // metadata marker: end of stream, grain table, directory or footer
			if le.Uint32(marker[12:]) == 0 {
				break
			}
			if _, err := io.CopyN(ioutil.Discard, body, int64(lba*sector)); err != nil {
				return err
			}
			continue
		}
		padded := (12 + int64(size) + sector - 1) / sector * sector
		rest := make([]byte, padded-sector)
		if _, err := io.ReadFull(body, rest); err != nil {
			return fmt.Errorf("the VMDK ends inside a grain: %v", err)
		}
		compressed := append(marker[12:], rest...)[:size]
		zr, err := zlib.NewReader(bytes.NewReader(compressed))
		if err != nil {
			return fmt.Errorf("a grain does not decompress: %v", err)
		}
		data, err := ioutil.ReadAll(io.LimitReader(zr, int64(grain*sector)))
		if err != nil {
			return fmt.Errorf("a grain does not decompress: %v", err)
		}
		if lba >= capacity {
			return fmt.Errorf("a grain lies past the disk's end")
		}
		if bytes.Count(data, []byte{0}) == len(data) {
			continue // a hole: thin
		}
		if _, err := flat.WriteAt(data, int64(lba*sector)); err != nil {
			return err
		}
	}
	if err := flat.Truncate(int64(capacity * sector)); err != nil {
		return err
	}
	text := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=fffffffe\nparentCID=ffffffff\n"+
		"createType=\"vmfs\"\n\n# Extent description\nRW %d VMFS \"%s\"\n\n# The Disk Data Base\n#DDB\n\n"+
		"ddb.adapterType = \"lsilogic\"\nddb.thinProvisioned = \"1\"\nddb.virtualHWVersion = \"13\"\n", capacity, flatName)
	return ioutil.WriteFile(descriptor, []byte(text), 0o600)
}

// ---------------------------------------------------------------------------------------------
// Changed Block Tracking emulation
//
// govmomi's simulator has no CBT. This section gives it the documented semantics of a real host:
//
//   - config.changeTrackingEnabled is switched by ReconfigVM_Task, which fails (in its task) with
//     InvalidState while the VM has snapshots; switching it off forgets every change log;
//   - tracking takes effect at the next stun/unstun: CreateSnapshot_Task or PowerOnVM_Task;
//   - on each CreateSnapshot_Task of a tracked VM every flat-backed disk gets a new changeId
//     ("<16 hex bytes of a tracking epoch>/<sequence>", as a host prints them), which the new
//     snapshot's config carries; the content of the disk at that moment is recorded as a per-block
//     hash map of its -flat.vmdk plus its allocated extents (SEEK_DATA/SEEK_HOLE);
//   - QueryChangedDiskAreas(snapshot, deviceKey, startOffset, changeId) answers a DiskChangeInfo
//     covering at most -cbt-span bytes from startOffset (callers loop until the capacity is
//     covered): changeId "*" lists the allocated extents, a known changeId the blocks whose content
//     differs between that point and the snapshot's point;
//   - a changeId the host does not know (never issued, or reset by a revert, a resize or switching
//     CBT off) is answered with FileFault naming the disk's -ctk.vmdk; a malformed one, an unknown
//     deviceKey or an offset outside the disk with InvalidArgument; a VM without active tracking
//     with FileFault as well (a host has no change log to read).
//
// Tests change a disk by writing into its -flat.vmdk on the datastore directory, so "what changed"
// is tracked by content between changeIds, not by intercepting writes.
// ---------------------------------------------------------------------------------------------

// cbtBlock is the granularity of the content map; changed areas are reported in these units.
const cbtBlock = 64 << 10

// The simulator's response envelope body (copy of simulator.response, unexported there).
type soapResponse struct {
	Body soap.HasFault
}

func (r *soapResponse) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	val := reflect.ValueOf(r.Body).Elem().FieldByName("Res")
	res := xml.StartElement{Name: xml.Name{Space: "urn:" + vim25.Namespace, Local: val.Elem().Type().Name()}}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	if err := e.EncodeElement(val.Interface(), res); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

// writeResult answers a SOAP call with body (a methods.*Body with Res set).
func writeResult(w http.ResponseWriter, body soap.HasFault) {
	var out bytes.Buffer
	fmt.Fprint(&out, xml.Header)
	e := xml.NewEncoder(&out)
	err := e.Encode(&soapEnvelope{
		Enc:  "http://schemas.xmlsoap.org/soap/encoding/",
		Env:  "http://schemas.xmlsoap.org/soap/envelope/",
		XSD:  "http://www.w3.org/2001/XMLSchema",
		XSI:  "http://www.w3.org/2001/XMLSchema-instance",
		Body: &soapResponse{body},
	})
	if err == nil {
		err = e.Flush()
	}
	if err != nil {
		log.Printf("encoding response: %s", err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Bytes())
}

// cbtPoint is a disk's content at the moment a changeId was issued.
type cbtPoint struct {
	capacity int64
	extents  []types.DiskChangeExtent // allocated areas of the flat file, clipped to capacity
	hashes   map[int64][16]byte       // block index -> content hash; absent = all zeroes
}

// cbtDisk is the change log of one disk: a tracking epoch and the points issued in it.
type cbtDisk struct {
	epoch  string
	seq    int
	points map[string]*cbtPoint
}

type cbtKey struct {
	vm  string
	dev int32
}

type cbtEmulator struct {
	mu     sync.Mutex
	span   int64
	active map[string]bool // VM moref value -> tracking has taken effect
	disks  map[cbtKey]*cbtDisk
}

func newCBTEmulator(span int64) *cbtEmulator {
	return &cbtEmulator{span: span, active: map[string]bool{}, disks: map[cbtKey]*cbtDisk{}}
}

// newEpoch returns 16 random bytes formatted as a host formats a CBT epoch.
func newEpoch() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	var s strings.Builder
	for i, x := range b {
		switch {
		case i == 8:
			s.WriteByte('-')
		case i > 0:
			s.WriteByte(' ')
		}
		fmt.Fprintf(&s, "%02x", x)
	}
	return s.String()
}

// flatPath maps a disk backing's datastore path ("[ds] dir/x.vmdk") to its -flat.vmdk on disk.
func flatPath(vm *simulator.VirtualMachine, fileName string) (string, error) {
	var p object.DatastorePath
	if !p.FromString(fileName) {
		return "", fmt.Errorf("bad datastore path %q", fileName)
	}
	host, ok := simulator.Map.Get(*vm.Runtime.Host).(*simulator.HostSystem)
	if !ok {
		return "", fmt.Errorf("VM has no host")
	}
	ds, ok := simulator.Map.FindByName(p.Datastore, host.Datastore).(*simulator.Datastore)
	if !ok {
		return "", fmt.Errorf("no datastore %q", p.Datastore)
	}
	rel := strings.TrimSuffix(p.Path, ".vmdk") + "-flat.vmdk"
	return path.Join(ds.Info.GetDatastoreInfo().Url, rel), nil
}

// readPoint records the content of a flat file: allocated extents from SEEK_DATA/SEEK_HOLE and
// the hash of every non-zero block touching them. A missing file is an empty (all-hole) disk.
func readPoint(file string, capacity int64) (*cbtPoint, error) {
	pt := &cbtPoint{capacity: capacity, hashes: map[int64][16]byte{}}
	f, err := os.Open(file)
	if os.IsNotExist(err) {
		return pt, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	end := st.Size()
	if end > capacity {
		end = capacity
	}
	const seekData, seekHole = 3, 4
	for off := int64(0); off < end; {
		d, err := f.Seek(off, seekData)
		if err != nil || d >= end { // ENXIO: no data past off
			break
		}
		h, err := f.Seek(d, seekHole)
		if err != nil {
			return nil, err
		}
		if h > end {
			h = end
		}
		pt.extents = append(pt.extents, types.DiskChangeExtent{Start: d, Length: h - d})
		off = h
	}
	buf := make([]byte, cbtBlock)
	zero := make([]byte, cbtBlock)
	last := int64(-1)
	for _, x := range pt.extents {
		for b := x.Start / cbtBlock; b*cbtBlock < x.Start+x.Length; b++ {
			if b == last {
				continue
			}
			last = b
			n, err := f.ReadAt(buf, b*cbtBlock)
			if err != nil && err != io.EOF {
				return nil, err
			}
			for i := n; i < len(buf); i++ {
				buf[i] = 0
			}
			if bytes.Equal(buf, zero) {
				continue
			}
			sum := sha256.Sum256(buf)
			var h [16]byte
			copy(h[:], sum[:16])
			pt.hashes[b] = h
		}
	}
	return pt, nil
}

// changedBlocks lists the blocks whose content differs between two points, merged into extents.
func changedBlocks(from, to *cbtPoint) []types.DiskChangeExtent {
	seen := map[int64]bool{}
	var blocks []int64
	for _, m := range []map[int64][16]byte{from.hashes, to.hashes} {
		for b := range m {
			if !seen[b] && from.hashes[b] != to.hashes[b] {
				blocks = append(blocks, b)
			}
			seen[b] = true
		}
	}
	sort.Slice(blocks, func(i, j int) bool { return blocks[i] < blocks[j] })
	var out []types.DiskChangeExtent
	for _, b := range blocks {
		start, length := b*cbtBlock, int64(cbtBlock)
		if start+length > to.capacity {
			length = to.capacity - start
		}
		if length <= 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Start+out[n-1].Length == start {
			out[n-1].Length += length
			continue
		}
		out = append(out, types.DiskChangeExtent{Start: start, Length: length})
	}
	return out
}

// clip keeps the parts of extents inside [lo, hi).
func clip(extents []types.DiskChangeExtent, lo, hi int64) []types.DiskChangeExtent {
	var out []types.DiskChangeExtent
	for _, x := range extents {
		s, e := x.Start, x.Start+x.Length
		if s < lo {
			s = lo
		}
		if e > hi {
			e = hi
		}
		if s < e {
			out = append(out, types.DiskChangeExtent{Start: s, Length: e - s})
		}
	}
	return out
}

// flatDisks returns the VM's virtual disks with flat (ver2) backings.
func flatDisks(devices []types.BaseVirtualDevice) []*types.VirtualDisk {
	var out []*types.VirtualDisk
	for _, d := range devices {
		if disk, ok := d.(*types.VirtualDisk); ok {
			if _, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
				out = append(out, disk)
			}
		}
	}
	return out
}

func diskCapacity(d *types.VirtualDisk) int64 {
	if d.CapacityInBytes > 0 {
		return d.CapacityInBytes
	}
	return d.CapacityInKB * 1024
}

func lookupVM(ref types.ManagedObjectReference) *simulator.VirtualMachine {
	vm, _ := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	return vm
}

func trackingEnabled(vm *simulator.VirtualMachine) bool {
	return vm.Config != nil && vm.Config.ChangeTrackingEnabled != nil && *vm.Config.ChangeTrackingEnabled
}

// forgetVM drops every change log of a VM (CBT switched off, or a revert).
func (c *cbtEmulator) forgetVM(vm string) {
	for k := range c.disks {
		if k.vm == vm {
			delete(c.disks, k)
		}
	}
}

// stun is a stun/unstun point (snapshot create, power on): tracking switched on takes effect.
func (c *cbtEmulator) stun(vm *simulator.VirtualMachine) {
	if trackingEnabled(vm) {
		c.active[vm.Self.Value] = true
	}
}

// issueChangeIds records each disk's content and gives it a new changeId. The VM's device list is
// replaced, not edited: snapshots share the old one and must keep the changeIds they were taken
// with.
func (c *cbtEmulator) issueChangeIds(vm *simulator.VirtualMachine) error {
	devices := make([]types.BaseVirtualDevice, len(vm.Config.Hardware.Device))
	copy(devices, vm.Config.Hardware.Device)
	for i, d := range devices {
		disk, ok := d.(*types.VirtualDisk)
		if !ok {
			continue
		}
		backing, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !ok {
			continue
		}
		file, err := flatPath(vm, backing.FileName)
		if err != nil {
			return err
		}
		pt, err := readPoint(file, diskCapacity(disk))
		if err != nil {
			return err
		}
		k := cbtKey{vm.Self.Value, disk.Key}
		dl := c.disks[k]
		if dl == nil {
			dl = &cbtDisk{epoch: newEpoch(), points: map[string]*cbtPoint{}}
			c.disks[k] = dl
		}
		dl.seq++
		id := fmt.Sprintf("%s/%d", dl.epoch, dl.seq)
		dl.points[id] = pt
		b := *backing
		b.ChangeId = id
		nd := *disk
		nd.Backing = &b
		devices[i] = &nd
	}
	vm.Config.Hardware.Device = devices
	return nil
}

// serve handles the CBT-related SOAP methods; it returns false for every other method.
func (c *cbtEmulator) serve(w http.ResponseWriter, r *http.Request, name string, body []byte, next http.Handler) bool {
	switch name {
	case "QueryChangedDiskAreas", "ReconfigVM_Task", "CreateSnapshot_Task", "PowerOnVM_Task",
		"RevertToSnapshot_Task", "RevertToCurrentSnapshot_Task":
	default:
		return false
	}
	if _, err := r.Cookie(soap.SessionCookieName); err != nil {
		return false // let the simulator answer NotAuthenticated
	}
	method, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil {
		return false
	}
	forward := func() { next.ServeHTTP(w, r) }
	c.mu.Lock()
	defer c.mu.Unlock()
	switch name {
	case "QueryChangedDiskAreas":
		req, _ := method.Body.(*types.QueryChangedDiskAreas)
		vm := lookupVM(method.This)
		if req == nil || vm == nil {
			return false
		}
		var res types.DiskChangeInfo
		var fault *soap.Fault
		simulator.Map.WithLock(vm, func() { res, fault = c.query(vm, req) })
		if fault != nil {
			writeFault(w, fault)
		} else {
			writeResult(w, &methods.QueryChangedDiskAreasBody{Res: &types.QueryChangedDiskAreasResponse{Returnval: res}})
		}
	case "ReconfigVM_Task":
		req, _ := method.Body.(*types.ReconfigVM_Task)
		vm := lookupVM(method.This)
		if req == nil || vm == nil {
			return false
		}
		var before map[int32]int64
		refused := false
		simulator.Map.WithLock(vm, func() {
			want := req.Spec.ChangeTrackingEnabled
			refused = want != nil && *want != trackingEnabled(vm) && vm.Snapshot != nil
			before = capacities(vm)
		})
		if refused {
			task := simulator.CreateTask(vm, "reconfigVm", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
				return nil, &types.InvalidState{}
			})
			writeResult(w, &methods.ReconfigVM_TaskBody{Res: &types.ReconfigVM_TaskResponse{Returnval: task.Run()}})
			return true
		}
		forward()
		simulator.Map.WithLock(vm, func() {
			if !trackingEnabled(vm) {
				delete(c.active, vm.Self.Value)
				c.forgetVM(vm.Self.Value)
				return
			}
			// A resized or removed disk loses its change log (a host resets CBT on resize).
			after := capacities(vm)
			for key, size := range before {
				if after[key] != size {
					delete(c.disks, cbtKey{vm.Self.Value, key})
				}
			}
		})
	case "CreateSnapshot_Task":
		vm := lookupVM(method.This)
		if vm == nil {
			return false
		}
		var ferr error
		simulator.Map.WithLock(vm, func() {
			c.stun(vm)
			if c.active[vm.Self.Value] {
				ferr = c.issueChangeIds(vm)
			}
		})
		if ferr != nil {
			log.Printf("CBT: recording disk content: %s", ferr)
		}
		forward()
	case "PowerOnVM_Task":
		forward()
		if vm := lookupVM(method.This); vm != nil {
			simulator.Map.WithLock(vm, func() { c.stun(vm) })
		}
	case "RevertToSnapshot_Task", "RevertToCurrentSnapshot_Task":
		forward()
		vmRef := method.This
		if name == "RevertToSnapshot_Task" {
			if snap, ok := simulator.Map.Get(method.This).(*simulator.VirtualMachineSnapshot); ok {
				vmRef = snap.Vm
			}
		}
		if vm := lookupVM(vmRef); vm != nil {
			c.forgetVM(vm.Self.Value) // a revert resets CBT: earlier changeIds are refused
		}
	}
	return true
}

func capacities(vm *simulator.VirtualMachine) map[int32]int64 {
	out := map[int32]int64{}
	for _, d := range flatDisks(vm.Config.Hardware.Device) {
		out[d.Key] = diskCapacity(d)
	}
	return out
}

func invalidArgument(prop string) *soap.Fault {
	return simulator.Fault("A specified parameter was not correct: "+prop, &types.InvalidArgument{InvalidProperty: prop})
}

// query answers QueryChangedDiskAreas for vm (held locked by the caller).
func (c *cbtEmulator) query(vm *simulator.VirtualMachine, req *types.QueryChangedDiskAreas) (types.DiskChangeInfo, *soap.Fault) {
	var none types.DiskChangeInfo
	devices := vm.Config.Hardware.Device
	if req.Snapshot == nil && vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
		// Without a snapshot the "current" state is only stable on a powered-off VM.
		return none, simulator.Fault("", &types.InvalidPowerState{
			RequestedState: types.VirtualMachinePowerStatePoweredOff, ExistingState: vm.Runtime.PowerState})
	}
	if req.Snapshot != nil {
		snap, ok := simulator.Map.Get(*req.Snapshot).(*simulator.VirtualMachineSnapshot)
		if !ok || snap.Vm != vm.Self {
			return none, simulator.Fault("", &types.ManagedObjectNotFound{Obj: *req.Snapshot})
		}
		devices = snap.Config.Hardware.Device
	}
	var disk *types.VirtualDisk
	for _, d := range flatDisks(devices) {
		if d.Key == req.DeviceKey {
			disk = d
		}
	}
	if disk == nil {
		return none, invalidArgument("deviceKey")
	}
	capacity := diskCapacity(disk)
	if req.StartOffset < 0 || req.StartOffset >= capacity {
		return none, invalidArgument("startOffset")
	}
	backing := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	ctk := strings.TrimSuffix(backing.FileName, ".vmdk") + "-ctk.vmdk"
	fileFault := simulator.Fault("Error caused by file "+ctk, &types.FileFault{File: ctk})
	if req.ChangeId != "*" {
		slash := strings.LastIndexByte(req.ChangeId, '/')
		if slash <= 0 {
			return none, invalidArgument("changeId")
		}
		if _, err := strconv.Atoi(req.ChangeId[slash+1:]); err != nil {
			return none, invalidArgument("changeId")
		}
	}
	logd := c.disks[cbtKey{vm.Self.Value, disk.Key}]
	if !c.active[vm.Self.Value] || logd == nil {
		return none, fileFault
	}
	// The point the answer describes: the snapshot's changeId (or, without a snapshot, the disk's
	// latest one; a host allows that only for a powered-off VM).
	to := logd.points[backing.ChangeId]
	if to == nil {
		return none, fileFault
	}
	var areas []types.DiskChangeExtent
	if req.ChangeId == "*" {
		areas = to.extents
	} else {
		from := logd.points[req.ChangeId]
		if from == nil {
			return none, fileFault
		}
		areas = changedBlocks(from, to)
	}
	end := req.StartOffset + c.span
	if end > capacity || c.span <= 0 {
		end = capacity
	}
	return types.DiskChangeInfo{
		StartOffset: req.StartOffset,
		Length:      end - req.StartOffset,
		ChangedArea: clip(areas, req.StartOffset, end),
	}, nil
}

// ---- A guest that boots: VMware Tools' heartbeat and a leased address -----------------------
//
// govmomi's simulator never runs a guest: every VM reports toolsRunningStatus guestToolsNotRunning
// and a gray guestHeartbeatStatus, powered on or not. ESXi reports Tools running (and the guest's
// heartbeat green) once the guest OS has booted and started them, which needs a disk the firmware
// can boot from. guestEmulator applies that rule: a VM whose first disk holds a boot signature boots
// -boot-ms after its power on; one without never does (a restore drill of such a VM times out).

type guestEmulator struct {
	boot   time.Duration
	mu     sync.Mutex
	gen    map[string]int  // VM moref value -> power-on generation (a later power off cancels a boot)
	booted map[string]bool // VM moref value -> its guest was started here
}

// bootable reports whether the VM's first flat disk carries 0x55 0xAA at bytes 510-511.
func bootable(vm *simulator.VirtualMachine) bool {
	disks := flatDisks(vm.Config.Hardware.Device)
	if len(disks) == 0 {
		return false
	}
	backing := disks[0].Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	file, err := flatPath(vm, backing.FileName)
	if err != nil {
		return false
	}
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	var sector [512]byte
	if _, err := io.ReadFull(f, sector[:]); err != nil {
		return false
	}
	return sector[510] == 0x55 && sector[511] == 0xAA
}

// firstNicConnected reports whether the VM's first NIC connects at power on.
func firstNicConnected(vm *simulator.VirtualMachine) bool {
	for _, d := range vm.Config.Hardware.Device {
		if nic, ok := d.(types.BaseVirtualEthernetCard); ok {
			c := nic.GetVirtualEthernetCard().Connectable
			return c == nil || c.StartConnected
		}
	}
	return false
}

// setGuest publishes the guest's state: Tools running with a green heartbeat, or not at all.
func setGuest(vm *simulator.VirtualMachine, running bool, ip string) {
	tools, status, heartbeat := types.VirtualMachineToolsRunningStatusGuestToolsNotRunning,
		types.VirtualMachineToolsStatusToolsNotInstalled, types.ManagedEntityStatusGray
	state := "notRunning"
	if running {
		tools, status, heartbeat = types.VirtualMachineToolsRunningStatusGuestToolsRunning,
			types.VirtualMachineToolsStatusToolsOk, types.ManagedEntityStatusGreen
		state = "running"
	}
	changes := []types.PropertyChange{
		{Name: "guest.toolsRunningStatus", Val: string(tools)},
		{Name: "guest.toolsStatus", Val: status},
		{Name: "guest.guestState", Val: state},
		{Name: "guest.ipAddress", Val: ip},
		{Name: "summary.quickStats.guestHeartbeatStatus", Val: heartbeat},
	}
	if len(vm.Guest.Net) > 0 {
		net := append([]types.GuestNicInfo(nil), vm.Guest.Net...)
		net[0].IpAddress = nil
		net[0].Connected = ip != ""
		if ip != "" {
			net[0].IpAddress = []string{ip}
		}
		changes = append(changes, types.PropertyChange{Name: "guest.net", Val: net})
	}
	simulator.Map.Update(vm, changes)
}

// after runs once the simulator has answered a power method: it boots a bootable VM that went on,
// and stops the guest of a VM that went off.
func (g *guestEmulator) after(r *http.Request, name string, body []byte) {
	switch name {
	case "PowerOnVM_Task", "PowerOffVM_Task", "ShutdownGuest", "ResetVM_Task":
	default:
		return
	}
	if _, err := r.Cookie(soap.SessionCookieName); err != nil {
		return
	}
	method, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil {
		return
	}
	vm := lookupVM(method.This)
	if vm == nil {
		return
	}
	g.mu.Lock()
	if g.gen == nil {
		g.gen, g.booted = map[string]int{}, map[string]bool{}
	}
	g.gen[vm.Self.Value]++
	gen, booted := g.gen[vm.Self.Value], g.booted[vm.Self.Value]
	delete(g.booted, vm.Self.Value)
	g.mu.Unlock()
	on := false
	simulator.Map.WithLock(vm, func() {
		if booted { // only a guest this emulator started is stopped (extraConfig SET.guest.* stays)
			setGuest(vm, false, "")
		}
		on = vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn
	})
	if !on || name == "PowerOffVM_Task" || name == "ShutdownGuest" {
		return
	}
	go func() {
		time.Sleep(g.boot)
		g.mu.Lock()
		current := g.gen[vm.Self.Value] == gen
		g.mu.Unlock()
		if !current || lookupVM(vm.Self) == nil {
			return
		}
		simulator.Map.WithLock(vm, func() {
			if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn || !bootable(vm) {
				return
			}
			g.mu.Lock()
			g.booted[vm.Self.Value] = true
			g.mu.Unlock()
			ip := ""
			if firstNicConnected(vm) {
				sum := sha256.Sum256([]byte(vm.Self.Value))
				ip = fmt.Sprintf("198.51.100.%d", 10+int(sum[0])%200)
			}
			setGuest(vm, true, ip)
		})
	}()
}
