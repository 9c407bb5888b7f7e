<#
.SYNOPSIS
    Installs the Neo Alexandria edge worker as a Windows service run by NSSM, or removes it.

.DESCRIPTION
    Run from an elevated PowerShell. Needs nssm.exe on PATH (winget install NSSM.NSSM, or
    choco install nssm), the repository's .venv (with torch and requirements-edge.txt) and
    .env.edge (a copy of deploy\env.edge.example, filled in).

    The service runs ".venv\Scripts\python.exe -m edge worker" in the repository folder with
    MODE=EDGE, DATA_DIR and every variable of .env.edge. Its output goes to a log file that
    NSSM rotates at 10 MB. It restarts after any exit except 2 (a configuration error). On
    stop NSSM sends Ctrl+C and waits 75 s: the worker finishes the job in hand or requeues it
    within 60 s. Running it again updates the service; after editing .env.edge, run it again.

.EXAMPLE
    .\deploy\windows\install-worker.ps1

.EXAMPLE
    .\deploy\windows\install-worker.ps1 -Credential (Get-Credential .\neo-alexandria)

.EXAMPLE
    .\deploy\windows\install-worker.ps1 -Remove
#>
[CmdletBinding()]
param(
    # Name of the Windows service.
    [string]$ServiceName = 'NeoAlexandriaWorker',
    # The repository folder (the service's AppDirectory).
    [string]$RepoDir = (Join-Path $PSScriptRoot '..\..'),
    # The worker's DATA_DIR (embedded stores, caches).
    [string]$DataDir = (Join-Path $env:ProgramData 'NeoAlexandria\data'),
    # Where worker.log and its rotated copies go.
    [string]$LogDir = (Join-Path $env:ProgramData 'NeoAlexandria\logs'),
    # Account to run the service as (default: LocalSystem).
    [pscredential]$Credential,
    # Stop and remove the service instead.
    [switch]$Remove
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$StopTimeoutMs = 75000        # edge worker: 60 s to finish or requeue the job, plus margin
$RotateBytes = 10485760       # 10 MB
$RestartDelayMs = 5000
$ConfigErrorExitCode = 2      # python -m edge exits 2 on a configuration error

function Assert-Administrator {
    $identity = [Security.Principal.WindowsIdentity]::GetCurrent()
    $principal = New-Object Security.Principal.WindowsPrincipal($identity)
    if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
        throw 'Administrator rights are needed to manage services: open PowerShell with "Run as administrator" and run this again.'
    }
}

function Get-NssmPath {
    $command = Get-Command 'nssm.exe' -ErrorAction SilentlyContinue
    if (-not $command) {
        throw 'nssm.exe is not on PATH. Install it (winget install NSSM.NSSM, or choco install nssm, or https://nssm.cc/download), then open a new PowerShell and run this again.'
    }
    return $command.Source
}

function Invoke-Nssm {
    param([Parameter(ValueFromRemainingArguments = $true)][string[]]$NssmArgs)
    & $script:Nssm @NssmArgs
    if ($LASTEXITCODE -ne 0) {
        # Only the command, service and setting: values may be secrets.
        $what = ($NssmArgs | Select-Object -First 3) -join ' '
        throw "nssm $what failed (exit code $LASTEXITCODE)."
    }
}

# KEY=value lines, as systemd and setup_edge.sh read them: # comments, optional quotes.
function Read-EnvFile {
    param([string]$Path)
    $variables = [ordered]@{}
    $number = 0
    foreach ($line in Get-Content -LiteralPath $Path -Encoding UTF8) {
        $number++
        $text = $line.Trim()
        if ($text -eq '' -or $text.StartsWith('#')) { continue }
        if ($text -notmatch '^(export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$') {
            Write-Warning "$Path line ${number} is not KEY=value: ignored."
            continue
        }
        $key = $Matches[2]
        $value = $Matches[3].Trim()
        if ($value -match '^"(.*)"$' -or $value -match "^'(.*)'$") { $value = $Matches[1] }
        $variables[$key] = $value
    }
    return $variables
}

function Remove-WorkerService {
    $service = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
    if (-not $service) {
        Write-Host "No service named ${ServiceName}: nothing to remove."
        return
    }
    if ($service.Status -ne 'Stopped') {
        Write-Host "Stopping $ServiceName (up to $($StopTimeoutMs / 1000) s while the worker finishes its job)..."
        Invoke-Nssm stop $ServiceName
    }
    Invoke-Nssm remove $ServiceName confirm
    Write-Host "Removed $ServiceName. Logs are kept in $LogDir."
}

function Install-WorkerService {
    $repo = (Resolve-Path -LiteralPath $RepoDir).Path
    $python = Join-Path $repo '.venv\Scripts\python.exe'
    $envFile = Join-Path $repo '.env.edge'
    if (-not (Test-Path -LiteralPath $python)) {
        throw "$python not found. Create the virtualenv first (deploy\README.md, Windows): py -3.11 -m venv .venv, then install torch==2.13.0 and requirements-edge.txt into it."
    }
    if (-not (Test-Path -LiteralPath $envFile)) {
        Copy-Item -LiteralPath (Join-Path $repo 'deploy\env.edge.example') -Destination $envFile
        throw "Created $envFile from deploy\env.edge.example: fill in the queue, database and Qdrant, then run this again."
    }
    New-Item -ItemType Directory -Force -Path $DataDir, $LogDir | Out-Null
    $log = Join-Path $LogDir 'worker.log'

    # Later entries win: .env.edge overrides the defaults, as with the systemd unit.
    $environment = [ordered]@{ MODE = 'EDGE'; DATA_DIR = $DataDir; PYTHONUNBUFFERED = '1'; HF_HUB_OFFLINE = '1' }
    $fromFile = Read-EnvFile $envFile
    foreach ($key in $fromFile.Keys) { $environment[$key] = $fromFile[$key] }
    $pairs = @($environment.Keys | ForEach-Object { "$_=$($environment[$_])" })

    $existing = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
    if ($existing) {
        Write-Host "Updating service $ServiceName..."
        if ($existing.Status -ne 'Stopped') { Invoke-Nssm stop $ServiceName }
    } else {
        Write-Host "Installing service $ServiceName..."
        Invoke-Nssm install $ServiceName $python
    }
    Invoke-Nssm set $ServiceName Application $python
    Invoke-Nssm set $ServiceName AppDirectory $repo
    Invoke-Nssm set $ServiceName AppParameters '-m edge worker'
    Invoke-Nssm set $ServiceName DisplayName 'Neo Alexandria edge worker'
    Invoke-Nssm set $ServiceName Description 'Takes ingestion jobs from the queue: clones, parses, builds graphs and embeddings.'
    Invoke-Nssm set $ServiceName Start SERVICE_AUTO_START
    Invoke-Nssm set $ServiceName AppEnvironmentExtra @pairs

    # One log for stdout and stderr, appended, rotated at 10 MB while the service runs.
    Invoke-Nssm set $ServiceName AppStdout $log
    Invoke-Nssm set $ServiceName AppStderr $log
    Invoke-Nssm set $ServiceName AppStdoutCreationDisposition 4
    Invoke-Nssm set $ServiceName AppStderrCreationDisposition 4
    Invoke-Nssm set $ServiceName AppRotateFiles 1
    Invoke-Nssm set $ServiceName AppRotateOnline 1
    Invoke-Nssm set $ServiceName AppRotateBytes $RotateBytes

    # Restart on any exit but a configuration error, after a pause.
    Invoke-Nssm set $ServiceName AppExit Default Restart
    Invoke-Nssm set $ServiceName AppExit $ConfigErrorExitCode Exit
    Invoke-Nssm set $ServiceName AppRestartDelay $RestartDelayMs

    # Stop: Ctrl+C first (the worker's SIGINT), and time for the job in hand; then the rest.
    Invoke-Nssm set $ServiceName AppStopMethodSkip 0
    Invoke-Nssm set $ServiceName AppStopMethodConsole $StopTimeoutMs
    Invoke-Nssm set $ServiceName AppStopMethodWindow 1500
    Invoke-Nssm set $ServiceName AppStopMethodThreads 1500
    Invoke-Nssm set $ServiceName AppKillProcessTree 1

    if ($Credential) {
        Invoke-Nssm set $ServiceName ObjectName $Credential.UserName $Credential.GetNetworkCredential().Password
        foreach ($dir in $DataDir, $LogDir) {
            & icacls.exe $dir /grant "$($Credential.UserName):(OI)(CI)M" | Out-Null
            if ($LASTEXITCODE -ne 0) { throw "icacls could not give $($Credential.UserName) write access to $dir." }
        }
    }

    Invoke-Nssm start $ServiceName
    Write-Host "Started $ServiceName ($python -m edge worker in $repo)."
    Write-Host "Log: $log    Status: nssm status $ServiceName    Remove: $PSCommandPath -Remove"
}

Assert-Administrator
$script:Nssm = Get-NssmPath
if ($Remove) { Remove-WorkerService } else { Install-WorkerService }
