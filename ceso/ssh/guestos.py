"""hostd's table between a .vmx ``guestOS`` value and the vSphere API's guest id — a table, not a rule.

``windows9srv-64`` is ``windows9Server64Guest``, ``winhyperv`` is
``windowsHyperVGuest``, ``vmware-photon-64`` is ``vmwarePhoton64Guest``: no
string rule gets these right, so both directions go through the table ESXi
itself uses (the GUEST_OS_KEY_MAP of VMware's open-vm-tools, plus the values
newer hosts write: ``debian12-64``, ``windows11-64``, ...). .vmx values are
matched case-insensitively, as hostd does. Entries marked ``~`` are older or
alternative spellings: read, never written.

Contract: :func:`guest_id_from_vmx` maps a known value to its guest id and
returns an unknown one unchanged (it is carried to a clone as it was);
:func:`vmx_guest_os` maps a guest id back, passes a value that already is a
.vmx spelling through, and raises InvalidInputError for a guest id it cannot
write — never a made-up string the host would refuse.
"""

from __future__ import annotations

from ceso.errors import InvalidInputError

__all__ = ["guest_id_from_vmx", "vmx_guest_os"]

_TABLE = """
    win31=win31Guest win95=win95Guest win98=win98Guest winMe=winMeGuest winNT=winNTGuest nt4=winNTGuest~
    win2000=win2000ProGuest~ win2000Pro=win2000ProGuest win2000Serv=win2000ServGuest
    win2000AdvServ=win2000AdvServGuest winXPHome=winXPHomeGuest whistler=winXPHomeGuest~
    winXPPro=winXPProGuest winXPPro-64=winXPPro64Guest winNetWeb=winNetWebGuest
    winNetStandard=winNetStandardGuest winNetEnterprise=winNetEnterpriseGuest
    winNetDatacenter=winNetDatacenterGuest winNetBusiness=winNetBusinessGuest
    winNetStandard-64=winNetStandard64Guest winNetEnterprise-64=winNetEnterprise64Guest
    winNetDatacenter-64=winNetDatacenter64Guest longhorn=winLonghornGuest longhorn-64=winLonghorn64Guest
    winvista=winVistaGuest winvista-64=winVista64Guest windows7=windows7Guest windows7-64=windows7_64Guest
    windows7srv-64=windows7Server64Guest windows8=windows8Guest windows8-64=windows8_64Guest
    windows8srv-64=windows8Server64Guest windows9=windows9Guest windows9-64=windows9_64Guest
    windows9srv-64=windows9Server64Guest windows2019srv-64=windows2019srv_64Guest
    windows2019srvNext-64=windows2019srvNext_64Guest winHyperV=windowsHyperVGuest
    winServer2008Cluster-32=winLonghornGuest~ winServer2008Datacenter-32=winLonghornGuest~
    winServer2008DatacenterCore-32=winLonghornGuest~ winServer2008Enterprise-32=winLonghornGuest~
    winServer2008EnterpriseCore-32=winLonghornGuest~ winServer2008EnterpriseItanium-32=winLonghornGuest~
    winServer2008SmallBusiness-32=winLonghornGuest~ winServer2008SmallBusinessPremium-32=winLonghornGuest~
    winServer2008Standard-32=winLonghornGuest~ winServer2008StandardCore-32=winLonghornGuest~
    winServer2008MediumManagement-32=winLonghornGuest~ winServer2008MediumMessaging-32=winLonghornGuest~
    winServer2008MediumSecurity-32=winLonghornGuest~ winServer2008ForSmallBusiness-32=winLonghornGuest~
    winServer2008StorageEnterprise-32=winLonghornGuest~ winServer2008StorageExpress-32=winLonghornGuest~
    winServer2008StorageStandard-32=winLonghornGuest~ winServer2008StorageWorkgroup-32=winLonghornGuest~
    winServer2008Web-32=winLonghornGuest~ winServer2008Cluster-64=winLonghorn64Guest~
    winServer2008Datacenter-64=winLonghorn64Guest~ winServer2008DatacenterCore-64=winLonghorn64Guest~
    winServer2008Enterprise-64=winLonghorn64Guest~ winServer2008EnterpriseCore-64=winLonghorn64Guest~
    winServer2008EnterpriseItanium-64=winLonghorn64Guest~ winServer2008SmallBusiness-64=winLonghorn64Guest~
    winServer2008SmallBusinessPremium-64=winLonghorn64Guest~ winServer2008Standard-64=winLonghorn64Guest~
    winServer2008StandardCore-64=winLonghorn64Guest~ winServer2008MediumManagement-64=winLonghorn64Guest~
    winServer2008MediumMessaging-64=winLonghorn64Guest~ winServer2008MediumSecurity-64=winLonghorn64Guest~
    winServer2008ForSmallBusiness-64=winLonghorn64Guest~
    winServer2008StorageEnterprise-64=winLonghorn64Guest~ winServer2008StorageExpress-64=winLonghorn64Guest~
    winServer2008StorageStandard-64=winLonghorn64Guest~ winServer2008StorageWorkgroup-64=winLonghorn64Guest~
    winServer2008Web-64=winLonghorn64Guest~ winVistaUltimate-32=winVistaGuest~
    winVistaHomePremium-32=winVistaGuest~ winVistaHomeBasic-32=winVistaGuest~
    winVistaEnterprise-32=winVistaGuest~ winVistaBusiness-32=winVistaGuest~
    winVistaStarter-32=winVistaGuest~ winVistaUltimate-64=winVista64Guest~
    winVistaHomePremium-64=winVista64Guest~ winVistaHomeBasic-64=winVista64Guest~
    winVistaEnterprise-64=winVista64Guest~ winVistaBusiness-64=winVista64Guest~
    winVistaStarter-64=winVista64Guest~ redhat=redhatGuest rhel2=rhel2Guest rhel3=rhel3Guest
    rhel3-64=rhel3_64Guest rhel4=rhel4Guest rhel4-64=rhel4_64Guest rhel5=rhel5Guest rhel5-64=rhel5_64Guest
    rhel6=rhel6Guest rhel6-64=rhel6_64Guest rhel7=rhel7Guest rhel7-64=rhel7_64Guest rhel8-64=rhel8_64Guest
    rhel9-64=rhel9_64Guest centos=centosGuest centos-64=centos64Guest centos6=centos6Guest
    centos6-64=centos6_64Guest centos7=centos7Guest~ centos7-64=centos7_64Guest centos8-64=centos8_64Guest
    centos9-64=centos9_64Guest oraclelinux=oracleLinuxGuest oraclelinux-64=oracleLinux64Guest
    oraclelinux6=oracleLinux6Guest oraclelinux6-64=oracleLinux6_64Guest oraclelinux7=oracleLinux7Guest~
    oraclelinux7-64=oracleLinux7_64Guest oraclelinux8-64=oracleLinux8_64Guest
    oraclelinux9-64=oracleLinux9_64Guest suse=suseGuest suse-64=suse64Guest sles=slesGuest
    sles-64=sles64Guest sles10=sles10Guest sles10-64=sles10_64Guest sles11=sles11Guest
    sles11-64=sles11_64Guest sles12=sles12Guest sles12-64=sles12_64Guest sles15-64=sles15_64Guest
    sles16-64=sles16_64Guest mandrake=mandrakeGuest mandrake-64=mandriva64Guest~ mandriva=mandrivaGuest
    mandriva-64=mandriva64Guest turbolinux=turboLinuxGuest turbolinux-64=turboLinux64Guest
    ubuntu=ubuntuGuest ubuntu-64=ubuntu64Guest debian4=debian4Guest debian4-64=debian4_64Guest
    debian5=debian5Guest debian5-64=debian5_64Guest debian6=debian6Guest debian6-64=debian6_64Guest
    debian7=debian7Guest debian7-64=debian7_64Guest debian8=debian8Guest debian8-64=debian8_64Guest
    debian9=debian9Guest debian9-64=debian9_64Guest debian10=debian10Guest debian10-64=debian10_64Guest
    debian11=debian11Guest debian11-64=debian11_64Guest asianux3=asianux3Guest asianux3-64=asianux3_64Guest
    asianux4=asianux4Guest asianux4-64=asianux4_64Guest asianux5-64=asianux5_64Guest
    asianux7-64=asianux7_64Guest asianux8-64=asianux8_64Guest asianux9-64=asianux9_64Guest nld9=nld9Guest
    oes=oesGuest sjds=sjdsGuest opensuse=opensuseGuest opensuse-64=opensuse64Guest fedora=fedoraGuest
    fedora-64=fedora64Guest coreos-64=coreos64Guest vmware-photon-64=vmwarePhoton64Guest
    other24xlinux=other24xLinuxGuest other24xlinux-64=other24xLinux64Guest other26xlinux=other26xLinuxGuest
    other26xlinux-64=other26xLinux64Guest other3xlinux=other3xLinuxGuest other3xlinux-64=other3xLinux64Guest
    other4xlinux=other4xLinuxGuest other4xlinux-64=other4xLinux64Guest other5xlinux=other5xLinuxGuest
    other5xlinux-64=other5xLinux64Guest linux=otherLinuxGuest~ otherlinux=otherLinuxGuest
    otherlinux-64=otherLinux64Guest genericlinux=genericLinuxGuest amazonlinux2-64=amazonlinux2_64Guest
    amazonlinux3-64=amazonlinux3_64Guest CRXPod1-64=crxPod1Guest netware4=netware4Guest
    netware5=netware5Guest netware6=netware6Guest solaris6=solaris6Guest solaris7=solaris7Guest
    solaris8=solaris8Guest solaris9=solaris9Guest solaris10=solaris10Guest solaris10-64=solaris10_64Guest
    solaris11-64=solaris11_64Guest darwin=darwinGuest darwin-64=darwin64Guest darwin10=darwin10Guest
    darwin10-64=darwin10_64Guest darwin11=darwin11Guest darwin11-64=darwin11_64Guest
    darwin12-64=darwin12_64Guest darwin13-64=darwin13_64Guest darwin14-64=darwin14_64Guest
    darwin15-64=darwin15_64Guest darwin16-64=darwin16_64Guest darwin17-64=darwin17_64Guest
    darwin18-64=darwin18_64Guest darwin19-64=darwin19_64Guest darwin20-64=darwin20_64Guest
    darwin21-64=darwin21_64Guest vmkernel=vmkernelGuest vmkernel5=vmkernel5Guest vmkernel6=vmkernel6Guest
    vmkernel65=vmkernel65Guest vmkernel7=vmkernel7Guest dos=dosGuest os2=os2Guest os2experimental=os2Guest~
    eComStation=eComStationGuest eComStation2=eComStation2Guest freeBSD=freebsdGuest
    freeBSD-64=freebsd64Guest freeBSD11=freebsd11Guest freeBSD11-64=freebsd11_64Guest
    freeBSD12=freebsd12Guest freeBSD12-64=freebsd12_64Guest freeBSD13=freebsd13Guest
    freeBSD13-64=freebsd13_64Guest openserver5=openServer5Guest openserver6=openServer6Guest
    unixware7=unixWare7Guest other=otherGuest other-64=otherGuest64 debian12=debian12Guest
    debian12-64=debian12_64Guest windows11-64=windows11_64Guest
    windows2022srvNext-64=windows2022srvNext_64Guest almalinux-64=almalinux_64Guest
    rockylinux-64=rockylinux_64Guest other6xlinux-64=other6xLinux64Guest
"""


def _load() -> tuple[dict[str, str], dict[str, str]]:
    to_api: dict[str, str] = {}
    to_vmx: dict[str, str] = {}
    for token in _TABLE.split():
        vmx, _, api = token.partition("=")
        to_api[vmx.lower()] = api.rstrip("~")
        if not api.endswith("~"):
            to_vmx.setdefault(api, vmx)
    return to_api, to_vmx


_TO_API, _TO_VMX = _load()


def guest_id_from_vmx(guest_os: str) -> str:
    """.vmx ``guestOS`` → API guest id (``windows9srv-64`` → ``windows9Server64Guest``); unknown ones unchanged."""
    return _TO_API.get(guest_os.strip().lower(), guest_os.strip())


def vmx_guest_os(guest_id: str) -> str:
    """API guest id → .vmx ``guestOS`` (``ubuntu64Guest`` → ``ubuntu-64``).

    A value that is already a .vmx spelling (known, or carried unchanged from a
    source's .vmx) is returned as it is. Raises InvalidInputError for a guest id
    the table does not hold.
    """
    if guest_id in _TO_VMX:
        return _TO_VMX[guest_id]
    if guest_id.lower() in _TO_API or not guest_id.endswith(("Guest", "Guest64")):
        return guest_id
    raise InvalidInputError(
        f"guest id {guest_id!r} has no .vmx guestOS value ceso knows; the SSH route cannot write it"
    )
