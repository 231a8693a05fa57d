# An application load balancer in front of one service: IP target groups (Fargate
# tasks register by address), a production listener, and for blue/green a second
# target group and a test listener that CodeDeploy switches between them.
#
# The security group opens 80 (and 443 with a certificate) to `ingress_cidrs`, the
# test listener to `test_listener_cidrs` only, and has no egress of its own: the
# ecs-service module allows egress to its tasks' security group on the container
# port, so the load balancer reaches nothing else.

locals {
  https       = var.certificate_arn != null
  prod_port   = local.https ? 443 : 80
  prod_proto  = local.https ? "HTTPS" : "HTTP"
  colours     = var.blue_green ? ["blue", "green"] : ["main"]
  first       = local.colours[0]
  open_ports  = local.https ? [80, 443] : [80]
  open_rules  = { for p in setproduct(local.open_ports, var.ingress_cidrs) : "${p[0]}-${p[1]}" => { port = p[0], cidr = p[1] } }
  test_cidrs  = var.blue_green ? toset(var.test_listener_cidrs) : toset([])
  target_name = { for c in local.colours : c => c == "main" ? var.name : "${var.name}-${c}" }
}

resource "aws_security_group" "this" {
  name        = "${var.name}-alb"
  description = "Load balancer ${var.name}: HTTP(S) in, the service's tasks out"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-alb" })
}

resource "aws_vpc_security_group_ingress_rule" "listener" {
  for_each = local.open_rules

  security_group_id = aws_security_group.this.id
  description       = "Listener port ${each.value.port}"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

resource "aws_vpc_security_group_ingress_rule" "test_listener" {
  for_each = local.test_cidrs

  security_group_id = aws_security_group.this.id
  description       = "Blue/green test listener"
  ip_protocol       = "tcp"
  from_port         = var.test_listener_port
  to_port           = var.test_listener_port
  cidr_ipv4         = each.value
}

resource "aws_lb" "this" {
  name                       = var.name
  load_balancer_type         = "application"
  internal                   = var.internal
  security_groups            = [aws_security_group.this.id]
  subnets                    = var.subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.enable_deletion_protection
  tags                       = var.tags
}

resource "aws_lb_target_group" "this" {
  for_each = local.target_name

  name                 = each.value
  vpc_id               = var.vpc_id
  target_type          = "ip"
  protocol             = "HTTP"
  port                 = var.target_port
  deregistration_delay = var.deregistration_delay

  health_check {
    path                = var.health_check_path
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = var.tags
}

# With a certificate, port 80 only redirects to HTTPS.
resource "aws_lb_listener" "redirect" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

# Rolling deployments: Terraform owns the listener's target.
resource "aws_lb_listener" "prod" {
  count = var.blue_green ? 0 : 1

  load_balancer_arn = aws_lb.this.arn
  port              = local.prod_port
  protocol          = local.prod_proto
  ssl_policy        = local.https ? var.ssl_policy : null
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[local.first].arn
  }
}

# Blue/green: CodeDeploy moves the listeners between the two target groups, so
# after the first deployment the live target is CodeDeploy's to say; Terraform
# must not move it back.
resource "aws_lb_listener" "prod_blue_green" {
  count = var.blue_green ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = local.prod_port
  protocol          = local.prod_proto
  ssl_policy        = local.https ? var.ssl_policy : null
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this["blue"].arn
  }

  lifecycle {
    ignore_changes = [default_action]
  }
}

resource "aws_lb_listener" "test" {
  count = var.blue_green ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = var.test_listener_port
  protocol          = "HTTP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this["blue"].arn
  }

  lifecycle {
    ignore_changes = [default_action]
  }
}
