# Proves from inside the instance whether IMDSv1 is still answered, as the guard's own Command document on Windows
# PowerShell 5.1 and PowerShell 7. Prints one JSON line of HTTP statuses (null: nothing answered in time), with the
# same keys as probe-linux.sh: {"v1","v1Credentials","token","v2"} of the IPv4 endpoint, "client", "v6":{the same
# four} of the IPv6 endpoint, "answered". It never prints the token or any metadata value.
$base4 = 'http://169.254.169.254'
if ($env:IMDS_ENDPOINT) { $base4 = $env:IMDS_ENDPOINT.TrimEnd('/') }
$base6 = 'http://[fd00:ec2::254]'
if ($env:IMDS_ENDPOINT_V6) { $base6 = $env:IMDS_ENDPOINT_V6.TrimEnd('/') }

# The test harnesses set this: a run that forgot an override must not reach a real metadata address.
if ($env:IMDS_PROBE_LOOPBACK_ONLY -eq '1') {
    foreach ($endpoint in @($base4, $base6)) {
        if ($endpoint -notmatch '^http://(127\.0\.0\.1|\[::1\]):\d+$') {
            [Console]::Error.WriteLine("probe-windows.ps1: $endpoint is not a loopback endpoint and IMDS_PROBE_LOOPBACK_ONLY=1")
            exit 2
        }
    }
}

$probeClock = [System.Diagnostics.Stopwatch]::StartNew()
$requestMs = 3000

# HttpWebRequest with its asynchronous calls and a stopwatch, rather than Invoke-WebRequest or the Timeout
# properties: the same APIs exist on 5.1 and 7; Timeout covers only the synchronous GetResponse and ReadWriteTimeout
# each read, so a server sending a byte a second would hold them for ever. Here connect, headers and body share one
# 3 s deadline, after which the request is aborted. No proxy (it would falsify the answer and see the token), no
# redirect (a 3xx is the answer, and the token never leaves the IMDS base URL). Returns the status ($null: no
# answer), the body if asked, and Cut: the deadline ended it, so the body is not to be trusted.
function Invoke-ImdsRequest([string]$Url, [string]$Method, [hashtable]$Headers, [switch]$ReadBody) {
    $outcome = @{ Status = $null; Body = $null; Cut = $false }
    # No request starts after 11.5 s, so the last one, bounded to 3 s, ends before 15 s.
    if ($probeClock.ElapsedMilliseconds -ge 11500) { return $outcome }
    $clock = [System.Diagnostics.Stopwatch]::StartNew()
    $request = $null
    $response = $null
    try {
        $request = [System.Net.WebRequest]::Create($Url)
        $request.Method = $Method
        $request.Proxy = $null
        $request.KeepAlive = $false
        $request.AllowAutoRedirect = $false
        if ($Method -eq 'PUT') { $request.ContentLength = 0 }
        foreach ($name in $Headers.Keys) { $request.Headers.Add($name, $Headers[$name]) }
        $pending = $request.BeginGetResponse($null, $null)
        if (-not $pending.AsyncWaitHandle.WaitOne($requestMs)) {
            $request.Abort()
            $outcome.Cut = $true
            return $outcome
        }
        try {
            $response = $request.EndGetResponse($pending)
        } catch {
            # PowerShell wraps exceptions of .NET calls in a MethodInvocationException; a 4xx/5xx is a WebException
            # that carries the response.
            $exception = $_.Exception
            while ($exception -and -not ($exception -is [System.Net.WebException])) { $exception = $exception.InnerException }
            if ($exception) { $response = $exception.Response }
        }
        if ($null -eq $response) { return $outcome }
        $outcome.Status = [int]$response.StatusCode
        $stream = $response.GetResponseStream()
        $buffer = New-Object byte[] 4096
        $kept = New-Object System.IO.MemoryStream
        while ($true) {
            $remaining = $requestMs - $clock.ElapsedMilliseconds
            if ($remaining -le 0) { $outcome.Cut = $true; break }
            $read = $stream.BeginRead($buffer, 0, $buffer.Length, $null, $null)
            if (-not $read.AsyncWaitHandle.WaitOne([int]$remaining)) { $outcome.Cut = $true; break }
            $count = $stream.EndRead($read)
            if ($count -le 0) { break }
            if ($ReadBody -and $kept.Length -lt 4096) { $kept.Write($buffer, 0, $count) }
        }
        if ($outcome.Cut) {
            $request.Abort()
        } elseif ($ReadBody) {
            $outcome.Body = [System.Text.Encoding]::ASCII.GetString($kept.ToArray())
        }
    } catch {
        # A connection refused, reset or garbled mid-body: the status (if any) stands, the body does not.
        $outcome.Body = $null
    } finally {
        if ($null -ne $response) { $response.Close() }
    }
    return $outcome
}

# An endpoint that does not answer, or answers too slowly, gets no more of the probe's 15 s.
function Invoke-EndpointProbe([string]$Base) {
    $seen = [ordered]@{ v1 = $null; v1Credentials = $null; token = $null; v2 = $null }
    $listing = Invoke-ImdsRequest ($Base + '/latest/meta-data/') 'GET' @{}
    $seen.v1 = $listing.Status
    if ($null -eq $listing.Status -or $listing.Cut) { return $seen }
    $credentials = Invoke-ImdsRequest ($Base + '/latest/meta-data/iam/security-credentials/') 'GET' @{}
    $seen.v1Credentials = $credentials.Status
    if ($credentials.Cut) { return $seen }
    $tokenAnswer = Invoke-ImdsRequest ($Base + '/latest/api/token') 'PUT' @{ 'X-aws-ec2-metadata-token-ttl-seconds' = '60' } -ReadBody
    $seen.token = $tokenAnswer.Status
    $token = $tokenAnswer.Body
    # A real token is base64; anything else is not sent back.
    if ($tokenAnswer.Status -eq 200 -and -not $tokenAnswer.Cut -and $token -match '^[A-Za-z0-9+/=_-]+$') {
        $seen.v2 = (Invoke-ImdsRequest ($Base + '/latest/meta-data/') 'GET' @{ 'X-aws-ec2-metadata-token' = $token }).Status
    }
    return $seen
}

function Test-Answered($Seen) {
    return ($null -ne $Seen.v1 -or $null -ne $Seen.v1Credentials -or $null -ne $Seen.token -or $null -ne $Seen.v2)
}

$ipv4 = Invoke-EndpointProbe $base4
$ipv6 = Invoke-EndpointProbe $base6
$answered = @()
if (Test-Answered $ipv4) { $answered += 'ipv4' }
if (Test-Answered $ipv6) { $answered += 'ipv6' }

# Built from statuses and constants only, so nothing the endpoint sent can reach the output.
$verdict = [ordered]@{
    v1 = $ipv4.v1
    v1Credentials = $ipv4.v1Credentials
    token = $ipv4.token
    v2 = $ipv4.v2
    client = 'HttpWebRequest'
    v6 = $ipv6
    answered = [string[]]$answered
}
Write-Output (ConvertTo-Json -InputObject $verdict -Compress -Depth 3)
