# Proves from inside the instance whether IMDSv1 is still answered, for AWS-RunPowerShellScript on Windows
# PowerShell 5.1 and PowerShell 7. Prints one JSON line {"v1","token","v2","client"} of HTTP statuses (null: nothing
# answered). It never prints the token or any metadata value: the verdict is judged from the statuses alone.
$base = 'http://169.254.169.254'
if ($env:IMDS_ENDPOINT) { $base = $env:IMDS_ENDPOINT.TrimEnd('/') }

# HttpWebRequest rather than Invoke-WebRequest: it behaves the same on 5.1 and 7 (a 4xx is a WebException carrying
# the response on both), it can be kept off any configured proxy, and its timeouts also cover the response stream,
# which Invoke-WebRequest -TimeoutSec does not on 5.1. Returns the status ($null: no answer) and, if asked, the body.
function Invoke-ImdsRequest([string]$Method, [string]$Path, [hashtable]$Headers, [switch]$ReadBody) {
    $response = $null
    try {
        $request = [System.Net.WebRequest]::Create($base + $Path)
        $request.Method = $Method
        $request.Timeout = 3000
        $request.ReadWriteTimeout = 3000
        # A proxy would both falsify the answer and see the token.
        $request.Proxy = $null
        $request.KeepAlive = $false
        $request.AllowAutoRedirect = $false
        if ($Method -eq 'PUT') { $request.ContentLength = 0 }
        foreach ($name in $Headers.Keys) { $request.Headers.Add($name, $Headers[$name]) }
        $response = $request.GetResponse()
    } catch {
        # PowerShell wraps exceptions of .NET calls in a MethodInvocationException; the status is on the WebException.
        $exception = $_.Exception
        while ($exception -and -not ($exception -is [System.Net.WebException])) { $exception = $exception.InnerException }
        if ($exception) { $response = $exception.Response }
    }
    if ($null -eq $response) { return @{ Status = $null; Body = $null } }
    try {
        $body = $null
        if ($ReadBody) { $body = (New-Object System.IO.StreamReader($response.GetResponseStream())).ReadToEnd() }
        return @{ Status = [int]$response.StatusCode; Body = $body }
    } catch {
        return @{ Status = [int]$response.StatusCode; Body = $null }
    } finally {
        $response.Close()
    }
}

$v1 = (Invoke-ImdsRequest 'GET' '/latest/meta-data/' @{}).Status
$tokenAnswer = Invoke-ImdsRequest 'PUT' '/latest/api/token' @{ 'X-aws-ec2-metadata-token-ttl-seconds' = '60' } -ReadBody
$token = $tokenAnswer.Body
$v2 = $null
if ($tokenAnswer.Status -eq 200 -and $token) {
    $v2 = (Invoke-ImdsRequest 'GET' '/latest/meta-data/' @{ 'X-aws-ec2-metadata-token' = $token }).Status
}

# Built from statuses and a constant only, so nothing the endpoint sent can reach the output.
$verdict = [ordered]@{ v1 = $v1; token = $tokenAnswer.Status; v2 = $v2; client = 'HttpWebRequest' }
Write-Output (ConvertTo-Json -InputObject $verdict -Compress)
