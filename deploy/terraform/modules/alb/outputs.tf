output "arn" {
  description = "Load balancer ARN."
  value       = aws_lb.this.arn
}

output "dns_name" {
  description = "Load balancer DNS name."
  value       = aws_lb.this.dns_name
}

output "zone_id" {
  description = "Load balancer hosted zone ID (for alias records)."
  value       = aws_lb.this.zone_id
}

output "security_group_id" {
  description = "Security group of the load balancer."
  value       = aws_security_group.this.id
}

# ECS refuses a target group that no listener uses yet, so the target group
# outputs wait for the listeners.
output "target_group_arn" {
  description = "ARN of the target group the production listener forwards to at creation (blue when blue/green)."
  value       = aws_lb_target_group.this[local.first].arn
  depends_on  = [aws_lb_listener.prod, aws_lb_listener.prod_blue_green, aws_lb_listener.test]
}

output "target_group_arns" {
  description = "Target group ARNs by colour: main, or blue and green."
  value       = { for k, tg in aws_lb_target_group.this : k => tg.arn }
  depends_on  = [aws_lb_listener.prod, aws_lb_listener.prod_blue_green, aws_lb_listener.test]
}

output "target_group_names" {
  description = "Target group names by colour: main, or blue and green."
  value       = { for k, tg in aws_lb_target_group.this : k => tg.name }
  depends_on  = [aws_lb_listener.prod, aws_lb_listener.prod_blue_green, aws_lb_listener.test]
}

output "prod_listener_arn" {
  description = "ARN of the production listener (HTTPS on 443 with a certificate, else HTTP on 80)."
  value       = one(concat(aws_lb_listener.prod[*].arn, aws_lb_listener.prod_blue_green[*].arn))
}

output "test_listener_arn" {
  description = "ARN of the blue/green test listener, null otherwise."
  value       = one(aws_lb_listener.test[*].arn)
}
